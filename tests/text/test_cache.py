"""The run's token cache: written memory-mapped and not again from itself, reused only while the corpus files,
the validation corpus and the data settings are what it was made from."""
import json

import numpy as np

from lstm_textgen.config import DataConfig
from lstm_textgen.run.files import TOKENS
from lstm_textgen.text.cache import corpus_fingerprint, load_token_cache, save_token_cache
from lstm_textgen.text.tokens import tokenize_corpus


def test_token_cache_comes_back_memory_mapped_and_is_not_rewritten_from_itself(tmp_path):
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat .\n" * 50)
    config = DataConfig(corpus=str(tmp_path / "corpus.txt"))
    _, train, val, _ = tokenize_corpus(config)
    mapped = save_token_cache(tmp_path / "run" / TOKENS, config, train, val, 7)
    assert all(isinstance(ids, np.memmap) and not ids.flags.writeable for ids in mapped)
    np.testing.assert_array_equal(mapped[0], train)
    np.testing.assert_array_equal(mapped[1], val)
    files = [tmp_path / "run" / TOKENS / name for name in ("train.npy", "val.npy", "manifest.json")]
    written = [path.stat().st_mtime_ns for path in files]
    again = save_token_cache(tmp_path / "run" / TOKENS, config, *mapped, 7)  # a run that read its own cache
    assert [path.stat().st_mtime_ns for path in files] == written
    np.testing.assert_array_equal(again[0], train)


def test_the_token_cache_is_keyed_by_the_level(tmp_path):
    (tmp_path / "c.txt").write_text("a b , c\n" * 20)
    config = DataConfig(corpus=str(tmp_path / "c.txt"), level="whitespace")
    tok, train, val, val_chars = tokenize_corpus(config)
    tok.save(tmp_path / "tokenizer.json", "0")
    save_token_cache(tmp_path / "tokens", config, train, val, val_chars)
    assert load_token_cache(tmp_path / "tokens", tmp_path / "tokenizer.json", config) is not None
    assert json.loads((tmp_path / "tokens" / "manifest.json").read_text())["data"]["level"] == "whitespace"
    assert load_token_cache(tmp_path / "tokens", tmp_path / "tokenizer.json",
                            DataConfig(corpus=config.corpus, level="word")) is None


def test_the_token_cache_is_keyed_by_the_val_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("one two three four five six seven eight nine ten " * 3)
    (tmp_path / "v.txt").write_text("one two three four")
    config = DataConfig(corpus=str(tmp_path / "a.txt"), val_corpus=str(tmp_path / "v.txt"))
    tokens = tokenize_corpus(config)
    folder = tmp_path / "run" / TOKENS
    folder.mkdir(parents=True)
    tokens.tokenizer.save(tmp_path / "run" / "tokenizer.json", "0")
    save_token_cache(folder, config, tokens.train, tokens.val, tokens.val_chars)
    assert load_token_cache(folder, tmp_path / "run" / "tokenizer.json", config) is not None
    (tmp_path / "v.txt").write_text("one two three four five")  # the validation text changed: tokenized again
    assert load_token_cache(folder, tmp_path / "run" / "tokenizer.json", config) is None
    alone = DataConfig(corpus=str(tmp_path / "a.txt"))
    assert load_token_cache(folder, tmp_path / "run" / "tokenizer.json", alone) is None


def test_a_damaged_or_stale_cache_is_none_and_tokenized_again(tmp_path):
    (tmp_path / "c.txt").write_text("a b c d\n" * 20)
    config = DataConfig(corpus=str(tmp_path / "c.txt"))
    tokens = tokenize_corpus(config)
    tokens.tokenizer.save(tmp_path / "tokenizer.json", "0")
    save_token_cache(tmp_path / "tokens", config, tokens.train, tokens.val, tokens.val_chars)
    assert corpus_fingerprint(config.corpus)[0][1] == len("a b c d\n" * 20)
    (tmp_path / "tokens" / "val.npy").write_bytes(b"")
    assert load_token_cache(tmp_path / "tokens", tmp_path / "tokenizer.json", config) is None
    save_token_cache(tmp_path / "tokens", config, tokens.train, tokens.val, tokens.val_chars)
    assert load_token_cache(tmp_path / "tokens", tmp_path / "tokenizer.json", config) is not None
    (tmp_path / "c.txt").write_text("a b c d\n" * 21)  # the corpus grew
    assert load_token_cache(tmp_path / "tokens", tmp_path / "tokenizer.json", config) is None
