"""Streaming tokenization of a whole corpus at every level: the same result as reading it all at once, the
validation tail kept out of training, and a separate validation corpus."""
import numpy as np
import pytest

from lstm_textgen.config import DataConfig
from lstm_textgen.text.corpus import find_files, read_text, split_point
from lstm_textgen.errors import CorpusError
from lstm_textgen.text.tokenizer import UNK_ID
from lstm_textgen.text.tokens import tokenize_corpus

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
        tok, train, val, _ = tokenize_corpus(config, chunk_bytes, block)
        assert tok.vocab == expected_tok.vocab and tok.counts == expected_tok.counts
        np.testing.assert_array_equal(train, expected[0])
        np.testing.assert_array_equal(val, expected[1])
        assert train.dtype == np.int32


@pytest.mark.parametrize("extend", [False, True])
def test_streaming_tokenization_in_a_given_vocabulary_equals_encoding_it_all(tmp_path, extend):
    from collections import Counter

    text = (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")
    base = fit_tokenizer([text[:5000]], "word", True, 200)
    (tmp_path / "a.txt").write_text(text[20000:26000], encoding="utf-8")
    config = DataConfig(corpus=str(tmp_path / "a.txt"), val_fraction=0.2)
    whole = text[20000:26000]
    expected_tok = base.recounted(Counter(base.split(whole)), extend, 260, 2)
    ids = expected_tok.encode_array(whole)
    cut = split_point(len(ids), 0.2)
    for chunk_bytes, block in ((97, 50), (1 << 20, 1 << 20)):
        tok, train, val, _ = tokenize_corpus(config, chunk_bytes, block,
                                             vocabulary=lambda counts: base.recounted(counts, extend, 260, 2))
        assert tok.vocab == expected_tok.vocab and tok.counts == expected_tok.counts
        assert tok.vocab[:200] == base.vocab and len(tok.vocab) == (260 if extend else 200)
        np.testing.assert_array_equal(train, ids[:cut])
        np.testing.assert_array_equal(val, ids[cut:])


def test_streaming_tokenization_refuses_an_empty_corpus(tmp_path):
    (tmp_path / "a.txt").write_text(" \n\n  ")
    (tmp_path / "b.txt").write_text("")
    with pytest.raises(CorpusError, match="all 2 files of corpus .* hold|holds no text"):
        tokenize_corpus(DataConfig(corpus=str(tmp_path)), 4)


def test_validation_tail_of_each_file_never_enters_training(tmp_path):
    for i in range(2):
        (tmp_path / f"f{i}.txt").write_text(" ".join(f"f{i}w{j}" for j in range(100)))
    tok, train, val, _ = tokenize_corpus(DataConfig(corpus=str(tmp_path), lowercase=False, val_fraction=0.2))
    assert len(train) == 160 and len(val) == 40
    val_words = {tok.vocab[i] for i in val}
    assert val_words == {f"f{i}w{j}" for i in range(2) for j in range(80, 100)}
    assert not val_words & {tok.vocab[i] for i in train}


def test_word_level_counts_the_characters_of_the_validation_text(tmp_path):
    (tmp_path / "a.txt").write_text("One two, three.\nFour   five six seven\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("x" * 5 + " yy zz\n\n", encoding="utf-8")
    config = DataConfig(corpus=str(tmp_path), val_fraction=0.3)
    for chunk_bytes in (5, 1 << 20):
        tok, train, val, val_chars = tokenize_corpus(config, chunk_bytes)
        assert len(val) == 3 + 2  # "six seven \n" and "\n \n"
        assert val_chars == len("six seven\n") + len("\n\n")


BPE_TEXT = (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")[:20_000]


def bpe_corpus(tmp_path):
    """Two files; the validation tails hold a word the training text never has."""
    (tmp_path / "a.txt").write_bytes(("\ufeff" + BPE_TEXT[:8000]).replace("\n", "\r\n").encode())
    (tmp_path / "b.txt").write_text(BPE_TEXT[8000:] + "\nzyzzyva qwxj zyzzyva\n" * 40 + "café 👋🏽 tail",
                                    encoding="utf-8")
    return DataConfig(corpus=str(tmp_path), level="bpe", lowercase=False, max_vocab=700, val_fraction=0.2)


def test_bpe_learns_on_the_training_parts_and_encodes_each_part_as_a_whole(tmp_path):
    config = bpe_corpus(tmp_path)
    texts = [read_text(path) for path in find_files(config.corpus)]
    tok, train, val, val_chars = tokenize_corpus(config)
    assert tok.vocab_size == 700 and not any("zyzz" in token for token in tok.vocab)  # learned from training only
    # Each file splits at a line start, about 20% of its bytes from its end, into a head (training) and a tail
    # (validation), and each part encodes as a whole.
    a, b = texts
    train_text, val_text = tok.decode(train), tok.decode(val)
    assert len(train_text) + len(val_text) == len(a) + len(b)
    heads = [x for x in range(1, len(a)) if a[x - 1] == "\n" and train_text.startswith(a[:x])
             and val_text.startswith(a[x:])]
    assert len(heads) == 1 and 0.15 < 1 - heads[0] / len(a) < 0.25
    head_a, tail_a = a[:heads[0]], a[heads[0]:]
    head_b, tail_b = train_text[len(head_a):], val_text[len(tail_a):]
    assert head_b + tail_b == b and head_b.endswith("\n") and 0.15 < len(tail_b) / len(b) < 0.25
    np.testing.assert_array_equal(train, np.concatenate([tok.encode_array(head_a), tok.encode_array(head_b)]))
    np.testing.assert_array_equal(val, np.concatenate([tok.encode_array(tail_a), tok.encode_array(tail_b)]))
    whole_val = val_text
    assert val_chars == len(whole_val)
    assert tok.counts == np.bincount(train, minlength=700).tolist() and tok.counts[:2] == [0, 0]
    for chunk_bytes, block in ((97, 50), (4096, 1 << 20)):  # small chunks and blocks: the same ids
        again = tokenize_corpus(config, chunk_bytes, block, like=tok)
        np.testing.assert_array_equal(again.train, train)
        np.testing.assert_array_equal(again.val, val)
        assert again.val_chars == val_chars and again.tokenizer.counts == tok.counts


def test_bpe_refuses_an_empty_corpus(tmp_path):
    (tmp_path / "a.txt").write_text(" \n\n  ")
    with pytest.raises(CorpusError, match="holds no text"):
        tokenize_corpus(DataConfig(corpus=str(tmp_path / "a.txt"), level="bpe"))


def test_bpe_refuses_a_corpus_with_no_line_start_in_its_validation_tail(tmp_path):
    (tmp_path / "a.txt").write_text("a first line\n" + "one long line " * 200, encoding="utf-8")
    with pytest.raises(CorpusError, match="no file of corpus .* has a line start in its last 10%"):
        tokenize_corpus(DataConfig(corpus=str(tmp_path / "a.txt"), level="bpe", max_vocab=300))


@pytest.mark.parametrize("level", ["word", "char"])
def test_a_val_corpus_validates_whole_in_the_vocabulary_of_all_of_the_corpus(tmp_path, level):
    text = (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.txt").write_text(text[:4000], encoding="utf-8")
    (tmp_path / "train" / "b.txt").write_text(text[4000:9000], encoding="utf-8")
    held_out = text[9000:12000] + "\nzyzzyva, quoth Xerxes ß\n"  # words and a letter the corpus lacks
    (tmp_path / "valid.txt").write_bytes(("\ufeff" + held_out).replace("\n", "\r\n").encode())
    config = DataConfig(corpus=str(tmp_path / "train"), val_corpus=str(tmp_path / "valid.txt"), level=level,
                        max_vocab=None, val_fraction=0.3)  # val_fraction is unused
    expected_tok = fit_tokenizer([text[:4000], text[4000:9000]], level)
    for chunk_bytes, block in ((97, 50), (1 << 20, 1 << 20)):
        tok, train, val, val_chars = tokenize_corpus(config, chunk_bytes, block)
        assert tok.vocab == expected_tok.vocab and tok.counts == expected_tok.counts  # from the corpus alone
        np.testing.assert_array_equal(train, expected_tok.encode_array(text[:9000]))  # all of it trains
        np.testing.assert_array_equal(val, expected_tok.encode_array(held_out))  # every token validates
        assert val_chars == len(held_out)  # as read: no BOM, CRLF as LF
    assert (val == UNK_ID).any() and not (train == UNK_ID).any()


def test_a_val_corpus_at_the_bpe_level_validates_every_byte_with_the_corpus_merges(tmp_path):
    (tmp_path / "corpus").mkdir()
    config = bpe_corpus(tmp_path / "corpus")
    (tmp_path / "valid").mkdir()
    held_out = "zyzzyva qwxj\n" + BPE_TEXT[:3000] + "\ncafé 👋🏽"  # starts with a line the corpus never has
    (tmp_path / "valid" / "v.txt").write_text(held_out, encoding="utf-8")
    config.val_corpus = str(tmp_path / "valid" / "v.txt")
    tok, train, val, val_chars = tokenize_corpus(config)
    corpus_text = "".join(read_text(path) for path in find_files(config.corpus))
    assert tok.decode(train) == corpus_text and tok.decode(val) == held_out  # all of the corpus trains
    assert val_chars == len(held_out) and tok.counts == np.bincount(train, minlength=700).tolist()
    whole = tokenize_corpus(DataConfig(corpus=config.corpus, level="bpe", lowercase=False, max_vocab=700,
                                       val_fraction=0.2))
    assert tok.vocab != whole.tokenizer.vocab  # learned on all of the corpus, its tails included
