"""Vector files read in one streaming pass: every format row by row, case fallback, malformed lines and
duplicates counted, unusable files refused in one line, memory that grows with the vocabulary."""
from __future__ import annotations

import gzip
import json
import tracemalloc

import numpy as np
import pytest

from lstm_textgen.config import EmbeddingConfig
from lstm_textgen.text.embeddings import load_embedding_matrix
from lstm_textgen.errors import EmbeddingError

from helpers import (EXTRA, NOT_IN_FILE, SUMMARY_RE, WORDS, corpus_text, expected_rows, fit, random_vectors,
                     write_vectors)


@pytest.mark.parametrize("fmt, compress, name", [
    ("glove", False, "vectors.txt"),
    ("glove", True, "vectors.txt"),  # gzip found by its magic bytes, not by the name
    ("vec", False, "wiki.en.vec"),
    ("vec", True, "wiki.en.vec.gz"),
    ("bin", False, "vectors.txt"),  # binary found by its bytes too
    ("bin", True, "GoogleNews.bin.gz"),
    ("gensim-bin", False, "model.bin"),
])
def test_every_format_gives_the_file_rows(tmp_path, fmt, compress, name):
    text = corpus_text()
    tokenizer, ids = fit(text)
    vectors = random_vectors([w for w in WORDS if w not in NOT_IN_FILE] + EXTRA, 6)
    path = tmp_path / name
    write_vectors(path, vectors, fmt, compress)

    matrix, coverage = load_embedding_matrix(EmbeddingConfig(path=str(path), dim=6), tokenizer, ids)

    assert matrix.dtype == np.float32 and matrix.shape == (tokenizer.vocab_size, 6)
    np.testing.assert_array_equal(matrix, expected_rows(tokenizer, vectors, 6))
    found = [w for w in tokenizer.vocab[2:] if w in vectors]
    missing = [w for w in tokenizer.vocab[2:] if w not in vectors]
    assert sorted(missing) == sorted(NOT_IN_FILE | {".", "\n"})
    counts = {w: int((ids == tokenizer.index[w]).sum()) for w in tokenizer.vocab[2:]}
    assert coverage["vocab_words"] == tokenizer.vocab_size - 2
    assert coverage["vocab_words_found"] == len(found) and coverage["missing_words"] == len(missing)
    assert coverage["vocab_share"] == pytest.approx(len(found) / (tokenizer.vocab_size - 2))
    assert coverage["token_share"] == pytest.approx(sum(counts[w] for w in found) / len(ids))
    assert coverage["top_missing"] == sorted(missing, key=lambda w: -counts[w])
    assert coverage["file_dim"] == 6 and coverage["file_words"] == len(vectors)
    assert coverage["skipped_lines"] == 0 and coverage["duplicates"] == 0
    assert ("binary" in coverage["format"]) == fmt.endswith("bin")
    assert ("gzip" in coverage["format"]) == compress
    assert json.loads(json.dumps(coverage)) == coverage
    summary = coverage["summary"]
    assert "\n" not in summary and SUMMARY_RE.match(summary), summary
    assert f"{len(found)} of {tokenizer.vocab_size - 2} vocabulary words found" in summary


def test_case_kept_tokenizer_falls_back_to_lower_case_but_prefers_exact(tmp_path):
    text = "The cat saw the Cat and a DOG . " * 20
    tokenizer, ids = fit(text, lowercase=False)
    vectors = random_vectors(["the", "The", "Cat", "cat", "dog", "and"], 4)
    path = tmp_path / "v.txt"
    write_vectors(path, vectors, "glove")  # an exact entry after the lower-cased one, and one before it

    matrix, coverage = load_embedding_matrix(EmbeddingConfig(path=str(path), dim=4), tokenizer, ids)

    row = lambda w: matrix[tokenizer.index[w]]  # noqa: E731
    for word, source in [("The", "The"), ("the", "the"), ("Cat", "Cat"), ("cat", "cat"), ("DOG", "dog")]:
        np.testing.assert_array_equal(row(word), vectors[source], err_msg=word)
    assert not row("saw").any() and not row("a").any()
    assert coverage["top_missing"] == ["saw", "a", "."]  # equal counts: the tokenizer's order


def test_lower_casing_tokenizer_takes_only_exact_entries(tmp_path):
    tokenizer, ids = fit("paris is big . " * 10)
    vectors = random_vectors(["Paris", "big", "IS"], 3)
    path = tmp_path / "v.txt"
    write_vectors(path, vectors, "glove")
    matrix, _ = load_embedding_matrix(EmbeddingConfig(path=str(path), dim=3), tokenizer, ids)
    np.testing.assert_array_equal(matrix[tokenizer.index["big"]], vectors["big"])
    assert not matrix[tokenizer.index["paris"]].any() and not matrix[tokenizer.index["is"]].any()


def test_short_text_values_before_a_non_ascii_word_are_still_text(tmp_path):
    text = "café olé naïve café . " * 10
    tokenizer, ids = fit(text)
    path = tmp_path / "v.vec"  # values shorter than 4 bytes each: the next line's word is within 4 * dim bytes
    path.write_text("3 5\ncafé 1 2 3 4 5\nolé 0 1 0 1 0\nnaïve -1 -2 -3 -4 -5\n", encoding="utf-8")
    matrix, coverage = load_embedding_matrix(EmbeddingConfig(path=str(path), dim=5), tokenizer, ids)
    assert "text" in coverage["format"] and coverage["vocab_words_found"] == 3
    np.testing.assert_array_equal(matrix[tokenizer.index["olé"]], [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(matrix[tokenizer.index["naïve"]], [-1, -2, -3, -4, -5])


def test_malformed_lines_and_duplicates_are_skipped_and_counted(tmp_path):
    tokenizer, ids = fit(corpus_text())
    v = random_vectors(WORDS, 3)
    fmt = lambda w, x: f"{w} " + " ".join(repr(float(a)) for a in x)  # noqa: E731
    lines = [
        fmt("the", v["the"]),
        fmt("cat", v["cat"][:2]),  # line 2: one value short
        fmt("dog", v["dog"]) + " 0.5",  # line 3: one value too many
        "sat 0.1 oops 0.3",  # line 4: not a number
        "ran 0.1 nan 0.3",  # line 5: not finite
        fmt("sat", v["sat"]),  # a good line after the bad one is used
        fmt("the", v["dog"]),  # a duplicate: the first vector is kept
        "",
        "on\t" + "\t".join(repr(float(a)) for a in v["on"]),  # tabs are whitespace too
        fmt("under", v["under"]) + "   ",
        fmt("zebra", [1.0, 2.0]),  # line 11: short, and not a vocabulary word
    ]
    path = tmp_path / "v.txt"
    path.write_bytes("\r\n".join(lines).encode() + b"\r\n")

    matrix, coverage = load_embedding_matrix(EmbeddingConfig(path=str(path), dim=3), tokenizer, ids)

    for word in ("the", "sat", "on", "under"):
        np.testing.assert_array_equal(matrix[tokenizer.index[word]], v[word], err_msg=word)
    for word in ("cat", "dog", "ran"):
        assert not matrix[tokenizer.index[word]].any(), word
    assert coverage["skipped_lines"] == 5 and coverage["first_skipped_line"] == 2
    assert coverage["duplicates"] == 1
    assert coverage["file_words"] == 5  # the, sat, the (again), on, under
    assert "skipped 5 malformed lines (first: line 2)" in coverage["summary"]
    assert "1 repeated words" in coverage["summary"]


def test_first_line_cut_short_sets_neither_dimension_nor_alignment(tmp_path):
    tokenizer, ids = fit(corpus_text())
    v = random_vectors(WORDS, 4)
    path = tmp_path / "v.txt"
    lines = ["the 0.5 0.25"] + [f"{w} " + " ".join(repr(float(a)) for a in v[w]) for w in WORDS[1:]]
    path.write_text("\n".join(lines) + "\n")
    matrix, coverage = load_embedding_matrix(EmbeddingConfig(path=str(path), dim=4), tokenizer, ids)
    assert coverage["file_dim"] == 4 and coverage["skipped_lines"] == 1
    assert not matrix[tokenizer.index["the"]].any()
    np.testing.assert_array_equal(matrix[tokenizer.index["cat"]], v["cat"])


def test_memory_grows_with_the_vocabulary_not_the_file(tmp_path):
    tokenizer, ids = fit(corpus_text())
    dim, n_words = 50, 60_000
    row = " ".join(f"{x:.5f}" for x in np.random.default_rng(0).normal(0, 0.4, dim))
    path = tmp_path / "big.txt"
    with open(path, "w") as f:
        f.write("".join(f"w{i} {row}\n" for i in range(n_words)))
        f.write("".join(f"{w} {row}\n" for w in WORDS))
    size = path.stat().st_size
    assert size > 20_000_000

    tracemalloc.start()
    try:
        matrix, coverage = load_embedding_matrix(EmbeddingConfig(path=str(path), dim=dim), tokenizer, ids)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert coverage["file_words"] == n_words + len(WORDS)
    assert coverage["vocab_words_found"] == len(WORDS)
    assert peak < size / 3, f"peak {peak:,} bytes while reading a {size:,}-byte file"


@pytest.mark.parametrize("content, dim, fragments", [
    (None, 6, ["does not exist", "embedding.path"]),
    ("folder", 6, ["is a folder"]),
    (b"", 6, ["holds no word vectors"]),
    (b"400000 6\n", 6, ["holds no word vectors"]),
    (b"First Citizen:\nBefore we proceed any further, hear me speak.\n", 6, ["is neither a text vector file"]),
    (b"PK\x03\x04rest of a zip", 6, ["zip archive", "unpack it"]),
    (gzip.compress(b"the 0.1 0.2 0.3 0.4 0.5 0.6\n" * 4000)[:300], 6, ["truncated or corrupt"]),
    (b"2 6\nthe " + np.ones(6, "<f4").tobytes() + b"\ncat " + np.ones(3, "<f4").tobytes(), 6,
     ["ends inside record 2", "truncated"]),
    (b"3 6\nthe 0.1 0.2\ncat 0.1 0.2\ndog 0.3 0.4\n", 6, ["line 2 has 2 values but its header (line 1) says 6"]),
    (b"zebra 0.1 0.2 0.3 0.4 0.5 0.6\nviolin 0.1 0.2 0.3 0.4 0.5 0.6\n", 6, ["none of the", "vocabulary words"]),
    (b"the 0.1 0.2 0.3 0.4 0.5\n", 6, ["embedding.dim is 6 but", "has 5-dimensional vectors",
                                      "set --set embedding.dim=5"]),
])
def test_unusable_files_are_one_line_errors(tmp_path, content, dim, fragments):
    tokenizer, ids = fit(corpus_text())
    path = tmp_path / "vectors.txt"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(EmbeddingError) as caught:
        load_embedding_matrix(EmbeddingConfig(path=str(path), dim=dim), tokenizer, ids)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_dimension_mismatch_names_both_numbers_exactly(tmp_path):
    tokenizer, ids = fit(corpus_text())
    path = tmp_path / "glove.txt"
    write_vectors(path, random_vectors(WORDS, 50), "glove")
    with pytest.raises(EmbeddingError) as caught:
        load_embedding_matrix(EmbeddingConfig(path=str(path), dim=100), tokenizer, ids)
    assert str(caught.value) == (f"embedding.dim is 100 but {path} has 50-dimensional vectors; "
                                 "set --set embedding.dim=50")
