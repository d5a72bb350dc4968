"""Streaming tokenization of a whole corpus (the same result as reading it all at once) and the token cache."""
import json

import numpy as np
import pytest

from lstm_textgen.config import DataConfig
from lstm_textgen.corpus import find_files, read_text, split_point
from lstm_textgen.errors import CorpusError
from lstm_textgen.rundir import TOKENS
from lstm_textgen.tokens import load_token_cache, save_token_cache, tokenize_corpus

from conftest import SHARED_DATA, fit_tokenizer


@pytest.mark.parametrize("level, lowercase, max_vocab", [("word", True, 30), ("word", False, None),
                                                         ("whitespace", True, None), ("char", False, None)])
def test_streaming_tokenization_equals_reading_it_all(tmp_path, level, lowercase, max_vocab):
    text = (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")
    (tmp_path / "a.txt").write_bytes(("\ufeff" + text[:3000]).replace("\n", "\r\n").encode())
    (tmp_path / "b.txt").write_text(text[3000:9000] + " “Quoted,” he said; don't stop", encoding="utf-8")
    config = DataConfig(corpus=str(tmp_path), level=level, lowercase=lowercase, max_vocab=max_vocab,
                        val_fraction=0.15)
    texts = [read_text(path) for path in find_files(config.corpus)]  # the whole text at once, as the oracle
    expected_tok = fit_tokenizer(texts, level, lowercase, max_vocab)
    encoded = [expected_tok.encode_array(text) for text in texts]
    cuts = [split_point(len(ids), 0.15) for ids in encoded]
    expected = (np.concatenate([ids[:cut] for ids, cut in zip(encoded, cuts)]),
                np.concatenate([ids[cut:] for ids, cut in zip(encoded, cuts)]))
    for chunk_bytes, block in ((97, 50), (97, 1 << 20), (1 << 20, 1000), (1 << 20, 1 << 20)):
        tok, train, val = tokenize_corpus(config, chunk_bytes, block)
        assert tok.vocab == expected_tok.vocab and tok.counts == expected_tok.counts
        np.testing.assert_array_equal(train, expected[0])
        np.testing.assert_array_equal(val, expected[1])
        assert train.dtype == np.int32


def test_streaming_tokenization_refuses_an_empty_corpus(tmp_path):
    (tmp_path / "a.txt").write_text(" \n\n  ")
    (tmp_path / "b.txt").write_text("")
    with pytest.raises(CorpusError, match="all 2 files of corpus .* hold|holds no text"):
        tokenize_corpus(DataConfig(corpus=str(tmp_path)), 4)


def test_token_cache_comes_back_memory_mapped_and_is_not_rewritten_from_itself(tmp_path):
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat .\n" * 50)
    config = DataConfig(corpus=str(tmp_path / "corpus.txt"))
    _, train, val = tokenize_corpus(config)
    mapped = save_token_cache(tmp_path / "run" / TOKENS, config, train, val)
    assert all(isinstance(ids, np.memmap) and not ids.flags.writeable for ids in mapped)
    np.testing.assert_array_equal(mapped[0], train)
    np.testing.assert_array_equal(mapped[1], val)
    files = [tmp_path / "run" / TOKENS / name for name in ("train.npy", "val.npy", "manifest.json")]
    written = [path.stat().st_mtime_ns for path in files]
    again = save_token_cache(tmp_path / "run" / TOKENS, config, *mapped)  # a run that read its own cache
    assert [path.stat().st_mtime_ns for path in files] == written
    np.testing.assert_array_equal(again[0], train)


def test_the_token_cache_is_keyed_by_the_level(tmp_path):
    (tmp_path / "c.txt").write_text("a b , c\n" * 20)
    config = DataConfig(corpus=str(tmp_path / "c.txt"), level="whitespace")
    tok, train, val = tokenize_corpus(config)
    tok.save(tmp_path / "tokenizer.json", "0")
    save_token_cache(tmp_path / "tokens", config, train, val)
    assert load_token_cache(tmp_path / "tokens", tmp_path / "tokenizer.json", config) is not None
    assert json.loads((tmp_path / "tokens" / "manifest.json").read_text())["data"]["level"] == "whitespace"
    assert load_token_cache(tmp_path / "tokens", tmp_path / "tokenizer.json",
                            DataConfig(corpus=config.corpus, level="word")) is None


def test_validation_tail_of_each_file_never_enters_training(tmp_path):
    for i in range(2):
        (tmp_path / f"f{i}.txt").write_text(" ".join(f"f{i}w{j}" for j in range(100)))
    tok, train, val = tokenize_corpus(DataConfig(corpus=str(tmp_path), lowercase=False, val_fraction=0.2))
    assert len(train) == 160 and len(val) == 40
    val_words = {tok.vocab[i] for i in val}
    assert val_words == {f"f{i}w{j}" for i in range(2) for j in range(80, 100)}
    assert not val_words & {tok.vocab[i] for i in train}
