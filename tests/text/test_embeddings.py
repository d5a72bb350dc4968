"""Pretrained vectors in the model: coverage figures, the rows of missing words, and frozen or trainable training."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.config import EmbeddingConfig, load_config
from lstm_textgen.text.embeddings import load_embedding_matrix
from lstm_textgen.text import load_tokenizer
from lstm_textgen.training.train import train

from conftest import SHARED_DATA
from helpers import EXTRA, NOT_IN_FILE, SUMMARY_RE, WORDS, corpus_text, fit, random_vectors, write_vectors

GLOVE_50D = SHARED_DATA / "glove.6B.50d.top2445.txt"  # 50-d, 2,445 words
SMALL_RUN = ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8", "model.units=8",
             "model.dense_units=8", "data.window_size=4"]


def embedding_weights(run_dir) -> tuple[np.ndarray, bool]:
    import keras  # here, so the reading tests run without TensorFlow

    layer = keras.models.load_model(run_dir / "model.keras", compile=False).get_layer("embedding")
    return layer.get_weights()[0], layer.trainable


# ---------------------------------------------------------------- reading files


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

    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
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

    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
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

    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
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
    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
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
