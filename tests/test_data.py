"""Windows cut on the fly: right inputs and sparse targets, full coverage, and a clean validation split."""
import json

import numpy as np
import pytest

from lstm_textgen.config import DataConfig
from lstm_textgen.corpus import find_files, read_text, split_point
from lstm_textgen.data import check_long_enough, count_windows, make_dataset, stride_for
from lstm_textgen.rundir import TOKENS
from lstm_textgen.tokens import save_token_cache, tokenize_corpus
from lstm_textgen.errors import CorpusError


def batches(ds, n):
    return [tuple(np.asarray(t) for t in b) for b in ds.take(n)]


@pytest.mark.parametrize("n, w, stride, expected", [(10, 3, 1, 7), (10, 3, 3, 3), (4, 3, 1, 1), (3, 3, 1, 0)])
def test_count_windows(n, w, stride, expected):
    assert count_windows(n, w, stride) == expected


def test_last_objective_windows_and_targets():
    ids = np.arange(100, 130, dtype=np.int32)
    (x, y), = batches(make_dataset(ids, 4, 64, "last", 1), 1)
    assert x.shape == (26, 4) and y.shape == (26,)
    assert x[0].tolist() == [100, 101, 102, 103] and y[0] == 104
    assert x[-1].tolist() == [125, 126, 127, 128] and y[-1] == 129


def test_sequence_objective_targets_are_shifted_inputs():
    ids = np.arange(50, dtype=np.int32)
    (x, y), = batches(make_dataset(ids, 5, 100, "sequence", 5), 1)
    assert x.shape == y.shape == (9, 5)
    np.testing.assert_array_equal(y, x + 1)
    assert x[:, 0].tolist() == list(range(0, 45, 5))  # windows tile the text


def test_shuffled_passes_cover_every_window_once_and_repeat_with_the_seed():
    ids = np.arange(40, dtype=np.int32)
    n = count_windows(40, 3, 1)
    first = batches(make_dataset(ids, 3, n, "last", 1, shuffle=True, seed=7), 2)
    again = batches(make_dataset(ids, 3, n, "last", 1, shuffle=True, seed=7), 2)
    other = batches(make_dataset(ids, 3, n, "last", 1, shuffle=True, seed=8), 1)
    for (x, y), _ in zip(first, range(2)):
        assert sorted(x[:, 0].tolist()) == list(range(n))  # one pass = every window exactly once
        np.testing.assert_array_equal(y, x[:, 0] + 3)
    assert first[0][0].tolist() != first[1][0].tolist()  # a new order each pass
    assert all((a[0] == b[0]).all() for a, b in zip(first, again))
    assert not (other[0][0] == first[0][0]).all()
    stream = np.concatenate([x for x, _ in batches(make_dataset(ids, 3, 4, "last", 1, shuffle=True, seed=7), 20)])
    for start in (8, 36, 44):  # mid-pass, the end of a pass, inside the second pass
        resumed = batches(make_dataset(ids, 3, 4, "last", 1, shuffle=True, seed=7, start=start), 3)
        np.testing.assert_array_equal(np.concatenate([x for x, _ in resumed]), stream[start:start + 12])


def test_validation_tail_of_each_file_never_enters_training(tmp_path):
    for i in range(2):
        (tmp_path / f"f{i}.txt").write_text(" ".join(f"f{i}w{j}" for j in range(100)))
    tok, train, val = tokenize_corpus(DataConfig(corpus=str(tmp_path), lowercase=False, val_fraction=0.2))
    assert len(train) == 160 and len(val) == 40
    val_words = {tok.vocab[i] for i in val}
    assert val_words == {f"f{i}w{j}" for i in range(2) for j in range(80, 100)}
    assert not val_words & {tok.vocab[i] for i in train}


def test_stride_defaults():
    config = DataConfig(window_size=7)
    assert stride_for(config, "last") == 1 and stride_for(config, "sequence") == 7
    assert stride_for(DataConfig(stride=2), "sequence") == 2


def test_too_short_for_one_window():
    config = DataConfig(window_size=10)
    with pytest.raises(CorpusError, match="too short for one training window of 11"):
        check_long_enough(np.ones(5, np.int32), np.ones(20, np.int32), config)
    with pytest.raises(CorpusError, match="validation tail has 3 tokens"):
        check_long_enough(np.ones(50, np.int32), np.ones(3, np.int32), config)


@pytest.mark.parametrize("level, lowercase, max_vocab", [("word", True, 30), ("word", False, None),
                                                         ("whitespace", True, None), ("char", False, None)])
def test_streaming_tokenization_equals_reading_it_all(tmp_path, level, lowercase, max_vocab):
    from conftest import SHARED_DATA, fit_tokenizer
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


def test_windows_cut_from_a_memmap_equal_those_from_an_array(tmp_path):
    ids = np.random.default_rng(0).integers(0, 500, 1000).astype(np.int32)
    np.save(tmp_path / "ids.npy", ids)
    mapped = np.load(tmp_path / "ids.npy", mmap_mode="r")
    for objective, stride, shuffle in (("sequence", 7, True), ("last", 1, True), ("last", 3, False)):
        a = batches(make_dataset(ids, 7, 16, objective, stride, shuffle=shuffle, seed=3, start=5), 30)
        b = batches(make_dataset(mapped, 7, 16, objective, stride, shuffle=shuffle, seed=3, start=5), 30)
        assert len(a) == len(b) > 0
        for (xa, ya), (xb, yb) in zip(a, b):
            assert xb.dtype == np.int32
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_shuffled_windows_follow_the_stateless_permutation_of_each_pass():
    import tensorflow as tf

    ids = np.arange(300, 400, dtype=np.int32)
    n = count_windows(100, 4, 2)  # 48 windows
    got = np.concatenate([x for x, _ in batches(make_dataset(ids, 4, 8, "sequence", 2, shuffle=True, seed=11), 12)])
    order = np.concatenate([tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64),
                                                                     seed=tf.constant([11, p], tf.int64)).numpy()
                            for p in range(2)])  # passes 0 and 1, as a run has always cut them
    np.testing.assert_array_equal(got, ids[order[:, None] * 2 + np.arange(4)])


def test_the_token_cache_is_keyed_by_the_level(tmp_path):
    from lstm_textgen.tokens import load_token_cache, save_token_cache
    (tmp_path / "c.txt").write_text("a b , c\n" * 20)
    config = DataConfig(corpus=str(tmp_path / "c.txt"), level="whitespace")
    tok, train, val = tokenize_corpus(config)
    tok.save(tmp_path / "tokenizer.json", "0")
    save_token_cache(tmp_path / "tokens", config, train, val)
    assert load_token_cache(tmp_path / "tokens", tmp_path / "tokenizer.json", config) is not None
    assert json.loads((tmp_path / "tokens" / "manifest.json").read_text())["data"]["level"] == "whitespace"
    assert load_token_cache(tmp_path / "tokens", tmp_path / "tokenizer.json",
                            DataConfig(corpus=config.corpus, level="word")) is None
