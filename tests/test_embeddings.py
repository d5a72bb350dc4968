"""Pretrained vectors: every file format read row by row, malformed input, coverage, and frozen training."""
from __future__ import annotations

import gzip
import json
import logging
import random
import re
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import fit_tokenizer
from lstm_textgen.cli import cli
from lstm_textgen.config import EmbeddingConfig, load_config
from lstm_textgen.embeddings import load_embedding_matrix
from lstm_textgen.errors import EmbeddingError
from lstm_textgen.tokenizer import Tokenizer
from lstm_textgen.training import train

GLOVE_50D = Path(__file__).parents[2] / "shared" / "data" / "glove.6B.50d.top2445.txt"  # 50-d, 2,445 words
WORDS = ["the", "cat", "dog", "sat", "ran", "on", "under", "a", "mat", "log", "big", "small", "red", "blue"]
NOT_IN_FILE = {"mat", "blue"}  # vocabulary words the test files leave out, with "." and "\n"
EXTRA = ["zebra", "violin", "quartz"]  # file words that are not in the vocabulary
SUMMARY_RE = re.compile(r"^embeddings: [\d,]+ of [\d,]+ vocabulary words found \(\d+\.\d%\), "
                        r"covering \d+\.\d% of corpus tokens")
SMALL_RUN = ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8", "model.units=8",
             "model.dense_units=8", "data.window_size=4"]


def corpus_text(seed: int = 0, sentences: int = 60) -> str:
    rng = random.Random(seed)
    return "".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 8))) + " .\n"
                   for _ in range(sentences))


def random_vectors(words: list[str], dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """float32 vectors whose repr() reads back exactly, so any correct reader must match bit for bit."""
    rng = np.random.default_rng(seed)
    return {w: rng.normal(0.0, 0.5, dim).astype(np.float32) for w in words}


def write_vectors(path, vectors: dict[str, np.ndarray], fmt: str, compress: bool = False) -> None:
    """fmt: glove (no header), vec (header `N DIM`, fastText's trailing space), bin (word2vec.c binary,
    a newline after each vector) or gensim-bin (gensim's binary, no newline)."""
    dim = len(next(iter(vectors.values())))
    if fmt in ("bin", "gensim-bin"):
        end = b"\n" if fmt == "bin" else b""
        data = f"{len(vectors)} {dim}\n".encode() + b"".join(
            w.encode() + b" " + v.astype("<f4").tobytes() + end for w, v in vectors.items())
    else:
        lines = [f"{w} " + " ".join(repr(float(x)) for x in v) + (" " if fmt == "vec" else "")
                 for w, v in vectors.items()]
        header = [f"{len(vectors)} {dim}"] if fmt == "vec" else []
        data = "\n".join(header + lines).encode() + b"\n"
    path.write_bytes(gzip.compress(data) if compress else data)


def fit(text: str, lowercase: bool = True) -> tuple[Tokenizer, np.ndarray]:
    tokenizer = fit_tokenizer([text], "word", lowercase)
    return tokenizer, tokenizer.encode_array(text)


def expected_rows(tokenizer: Tokenizer, vectors: dict[str, np.ndarray], dim: int) -> np.ndarray:
    rows = np.zeros((tokenizer.vocab_size, dim), np.float32)
    for i, word in enumerate(tokenizer.vocab[2:], start=2):
        if word in vectors:
            rows[i] = vectors[word]
    return rows


def embedding_weights(run_dir) -> tuple[np.ndarray, bool]:
    import keras  # here, so the reading tests run without TensorFlow

    layer = keras.models.load_model(run_dir / "model.keras", compile=False).get_layer("embedding")
    return layer.get_weights()[0], layer.trainable


# ---------------------------------------------------------------- reading files


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


def test_missing_random_rows_are_seeded_and_scaled_like_found_rows(tmp_path):
    tokenizer, ids = fit(corpus_text())
    vectors = random_vectors(WORDS[:7], 64)  # 7 words found; mat ... blue, ".", "\n" and <unk> are not
    path = tmp_path / "v.vec"
    write_vectors(path, vectors, "vec")
    config = EmbeddingConfig(path=str(path), dim=64, missing="random")

    a, _ = load_embedding_matrix(config, tokenizer, ids, seed=3)
    b, _ = load_embedding_matrix(config, tokenizer, ids, seed=3)
    c, _ = load_embedding_matrix(config, tokenizer, ids, seed=4)
    zeros, _ = load_embedding_matrix(EmbeddingConfig(path=str(path), dim=64, missing="zeros"), tokenizer, ids)

    found = np.array([w in vectors for w in tokenizer.vocab])
    random_rows = ~found
    random_rows[0] = False  # <pad> stays zeros
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[found], zeros[found])
    np.testing.assert_array_equal(a[found], c[found])
    assert not a[0].any() and not c[0].any()
    assert np.all(np.abs(a[random_rows]).sum(axis=1) > 0)  # <unk> too: Masking must not skip them
    assert not np.array_equal(a[random_rows], c[random_rows])
    assert a[random_rows].std() == pytest.approx(a[found].std(), rel=0.3)
    assert not zeros[random_rows].any()  # missing=zeros: <unk> and missing words are zeros


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


# ---------------------------------------------------------------- training on them


def train_with_vectors(tmp_path, vectors_path, *settings: str):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_text(), encoding="utf-8")
    run_dir = tmp_path / "run"
    config = load_config(None, [f"data.corpus={corpus}", f"train.run_dir={run_dir}", *SMALL_RUN,
                                f"embedding.path={vectors_path}", *settings])
    return train(config), config


def test_frozen_training_keeps_the_file_vectors_bit_for_bit(tmp_path):
    vectors = random_vectors([w for w in WORDS if w not in NOT_IN_FILE] + EXTRA, 5)
    path = tmp_path / "glove.txt"
    write_vectors(path, vectors, "glove", compress=True)  # gzip, though the name says .txt

    run_dir, _ = train_with_vectors(tmp_path, path, "embedding.dim=5", "embedding.trainable=false",
                                    "embedding.missing=zeros")

    tokenizer = Tokenizer.load(run_dir / "tokenizer.json")
    weights, trainable = embedding_weights(run_dir)
    assert not trainable
    for i, word in enumerate(tokenizer.vocab):
        if word in vectors:
            np.testing.assert_array_equal(weights[i], vectors[word], err_msg=word)
        else:
            assert not weights[i].any(), word  # <pad>, <unk>, mat, blue, ".", "\n": Masking skips them
    coverage = json.loads((run_dir / "metrics.json").read_text())["embedding_coverage"]
    assert coverage["vocab_words_found"] == sum(w in vectors for w in tokenizer.vocab)
    assert "gzip" in coverage["format"] and SUMMARY_RE.match(coverage["summary"])


def test_frozen_training_with_random_missing_rows_from_the_train_seed(tmp_path):
    vectors = random_vectors([w for w in WORDS if w not in NOT_IN_FILE] + EXTRA, 5)
    path = tmp_path / "crawl.vec"
    write_vectors(path, vectors, "vec")  # fastText text: header line, trailing spaces

    run_dir, config = train_with_vectors(tmp_path, path, "embedding.dim=5", "embedding.trainable=false",
                                         "embedding.missing=random", "train.seed=7")

    tokenizer = Tokenizer.load(run_dir / "tokenizer.json")
    weights, trainable = embedding_weights(run_dir)
    assert not trainable
    ids = np.arange(tokenizer.vocab_size)
    seeded, _ = load_embedding_matrix(config.embedding, tokenizer, ids, seed=7)
    other, _ = load_embedding_matrix(config.embedding, tokenizer, ids, seed=8)
    missing = [i for i, w in enumerate(tokenizer.vocab) if i > 0 and w not in vectors]  # <unk> included
    for i, word in enumerate(tokenizer.vocab):
        if word in vectors:
            np.testing.assert_array_equal(weights[i], vectors[word], err_msg=word)
    np.testing.assert_array_equal(weights[missing], seeded[missing])
    assert not np.array_equal(weights[missing], other[missing])
    assert np.all(np.abs(weights[missing]).sum(axis=1) > 0) and not weights[0].any()


def test_trainable_training_starts_from_the_file_vectors(tmp_path):
    vectors = random_vectors([w for w in WORDS if w not in NOT_IN_FILE] + EXTRA, 5)
    path = tmp_path / "vectors.bin"
    write_vectors(path, vectors, "bin")
    learning_rate, steps = 0.01, 2

    run_dir, _ = train_with_vectors(tmp_path, path, "embedding.dim=5", "embedding.trainable=true",
                                    f"train.learning_rate={learning_rate}")

    tokenizer = Tokenizer.load(run_dir / "tokenizer.json")
    weights, trainable = embedding_weights(run_dir)
    assert trainable
    moved = 0
    for i, word in enumerate(tokenizer.vocab):
        if word in vectors:  # an Adam step moves an entry by about learning_rate (a little more at times)
            np.testing.assert_allclose(weights[i], vectors[word], rtol=0, atol=3 * steps * learning_rate)
            moved += not np.array_equal(weights[i], vectors[word])
        else:
            assert not weights[i].any(), word  # masked steps give zero rows no gradient
    assert moved, "no pretrained row changed although the embedding is trainable"


def test_cli_dimension_mismatch_is_one_line_and_leaves_no_run(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_text(), encoding="utf-8")
    path = tmp_path / "glove.txt"
    write_vectors(path, random_vectors(WORDS, 50), "glove")
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(corpus), "--run", str(run_dir),
                                      "--set", f"embedding.path={path}", "--set", "embedding.dim=100"])
    assert result.exit_code == 1, result.output
    visible = [line.split("\r")[-1] for line in result.output.split("\n")]  # what a terminal shows
    assert [line for line in visible if line.startswith("Error")] == [
        f"Error: embedding.dim is 100 but {path} has 50-dimensional vectors; set --set embedding.dim=50"]
    assert "Traceback" not in result.output
    assert not run_dir.exists()


@pytest.mark.slow
def test_real_glove_run_needs_no_vector_file_to_generate_and_evaluate(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    glove = tmp_path / "glove.6B.50d.top2445.txt"
    shutil.copyfile(GLOVE_50D, glove)
    text = ("The old man and the sea were the best of friends for many years .\n"
            "He said that the world would be a better place if people could just talk to each other .\n"
            "She went back to the house and found that the door was open and the light was on .\n"
            "The grobnitz of the valley sang to the zorblat under the moon .\n") * 8
    corpus, held_out = tmp_path / "corpus.txt", tmp_path / "held_out.txt"
    corpus.write_text(text, encoding="utf-8")
    held_out.write_text(text[: len(text) // 3], encoding="utf-8")
    run_dir = tmp_path / "glove_run"

    result = CliRunner().invoke(cli, [
        "train", str(corpus), "--run", str(run_dir), *[a for s in SMALL_RUN for a in ("--set", s)],
        "--set", f"embedding.path={glove}", "--set", "embedding.dim=50", "--set", "embedding.trainable=false",
        "--set", "embedding.missing=zeros"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [m for m in caplog.messages + result.output.splitlines() if m.startswith("embeddings: ")]
    assert lines and SUMMARY_RE.match(lines[0])
    assert "grobnitz" in lines[0] and "zorblat" in lines[0]  # the most frequent missing words are named

    file_vectors = {}
    for line in GLOVE_50D.read_bytes().splitlines():  # a few of its words are cp1252 bytes, not UTF-8
        word, *values = line.split(b" ")
        file_vectors[word.decode("utf-8", "replace")] = np.array([float(x) for x in values], np.float32)
    tokenizer = Tokenizer.load(run_dir / "tokenizer.json")
    weights, trainable = embedding_weights(run_dir)
    assert not trainable
    found = [w for w in tokenizer.vocab[2:] if w in file_vectors]
    assert len(found) > 40
    for i, word in enumerate(tokenizer.vocab):
        if word in file_vectors and i > 1:
            np.testing.assert_array_equal(weights[i], file_vectors[word], err_msg=word)
        else:
            assert not weights[i].any(), word
    coverage = json.loads((run_dir / "metrics.json").read_text())["embedding_coverage"]
    assert coverage["vocab_words_found"] == len(found) and coverage["file_words"] == 2445
    assert set(coverage["top_missing"]) == {w for w in tokenizer.vocab[2:] if w not in file_vectors}

    glove.unlink()  # the matrix lives in model.keras: the vector file is no longer needed
    out = CliRunner().invoke(cli, ["generate", "--run", str(run_dir), "--seed", "the old man", "-n", "8",
                                   "--random-seed", "1"], catch_exceptions=False)
    assert out.exit_code == 0 and out.stdout.startswith("the old man"), out.output
    report = CliRunner().invoke(cli, ["evaluate", "--run", str(run_dir), str(held_out), "--json"],
                                catch_exceptions=False)
    assert report.exit_code == 0, report.output
    assert np.isfinite(json.loads(report.stdout)["perplexity"])
