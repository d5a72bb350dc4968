"""train(): the run directory's files, checkpoints, metrics, reproducibility and early stopping."""
import csv
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from lstm_textgen.run.rundir import load_run
from lstm_textgen import train
from lstm_textgen.config import load_config

from conftest import TINY_SETTINGS, train_tiny


def read_history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_run_directory_is_complete(tiny_run):
    names = {p.name for p in tiny_run.iterdir()}
    assert names == {"lstm-textgen-run.json", "config.yaml", "tokenizer.json", "model.keras", "checkpoints",
                     "history.csv", "metrics.json", "tokens", "samples.txt", "curves.png", ".lstm-textgen-lock"}
    assert sorted(p.name for p in (tiny_run / "checkpoints").iterdir()) == [
        "epoch_001.keras", "epoch_002.keras", "state.json", "state_000000006.weights.h5"]
    assert sorted(p.name for p in (tiny_run / "tokens").iterdir()) == ["manifest.json", "train.npy", "val.npy"]
    rows = read_history(tiny_run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_perplexity", "seconds",
                             "tokens_per_second", "windows_per_second", "learning_rate"]
    for row in rows:
        assert float(row["val_perplexity"]) == pytest.approx(np.exp(float(row["val_loss"])), rel=1e-6)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert metrics["best_epoch"] == int(best["epoch"])
    assert metrics["best_val_perplexity"] == pytest.approx(float(best["val_perplexity"]))
    assert metrics["epochs"] == 2 and metrics["tokens_seen"] == 2 * 3 * 8 * 5  # epochs*steps*batch*window
    assert metrics["tokens_per_second"] > 0


def test_saved_config_is_the_resolved_config(tiny_run):
    saved = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert saved["lstm_textgen"]["version"] and saved["model"]["units"] == 8
    assert load_run(tiny_run).config.train.epochs == 2


def test_model_keras_is_the_best_checkpoint(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    best = keras.models.load_model(tiny_run / "checkpoints" / f"epoch_{metrics['best_epoch']:03d}.keras")
    final = load_run(tiny_run).model
    x = np.array([[2, 3, 4, 5, 6]], np.int32)
    np.testing.assert_allclose(np.asarray(final(x)), np.asarray(best(x)), atol=1e-7)


def test_same_seed_same_history(tiny_corpus, tmp_path):
    a = read_history(train_tiny(tiny_corpus, tmp_path / "a"))
    b = read_history(train_tiny(tiny_corpus, tmp_path / "b"))
    c = read_history(train_tiny(tiny_corpus, tmp_path / "c", "train.seed=7"))
    assert [r["loss"] for r in a] == [r["loss"] for r in b] and [r["val_loss"] for r in a] == [r["val_loss"] for r in b]
    assert [r["loss"] for r in a] != [r["loss"] for r in c]


def test_early_stopping_and_checkpoint_pruning(tiny_corpus, tmp_path):
    # A learning rate this high makes val_loss worse after the first epochs, so patience 1 stops early.
    run = train_tiny(tiny_corpus, tmp_path / "run", "train.epochs=12", "train.learning_rate=5.0",
                     "train.early_stopping_patience=1", "train.keep_checkpoints=1")
    rows = read_history(run)
    assert len(rows) < 12
    losses = [float(r["val_loss"]) for r in rows]
    assert losses[-1] >= min(losses[:-1])  # it stopped because the last epoch was no better
    best = json.loads((run / "metrics.json").read_text())["best_epoch"]
    kept = sorted(p.name for p in (run / "checkpoints").glob("epoch_*"))
    assert kept == sorted({f"epoch_{best:03d}.keras", f"epoch_{len(rows):03d}.keras"})


@pytest.mark.parametrize("extra", [["model.objective=last"], ["data.level=char", "data.window_size=12"],
                                   ["data.level=whitespace"],
                                   ["model.rnn=gru", "model.layers=2"]])
def test_other_objectives_levels_and_cells_train(tiny_corpus, tmp_path, extra):
    run = train_tiny(tiny_corpus, tmp_path / "run", *extra)
    loaded = load_run(run)
    assert np.isfinite(float(read_history(run)[0]["val_loss"]))
    assert loaded.tokenizer.level == loaded.config.data.level


def test_default_run_dir_is_named_after_the_corpus(tiny_corpus, tmp_path):
    from lstm_textgen.training.train import train
    from conftest import TINY_SETTINGS
    run = train(load_config(None, [f"data.corpus={tiny_corpus}", *TINY_SETTINGS]))
    assert str(run) == "runs/corpus" and (tmp_path / "runs" / "corpus" / "model.keras").is_file()


def test_windows_per_second_is_recorded_beside_tokens_per_second(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    # objective sequence: a window of 5 gives 5 targets, so tokens/s is 5 times windows/s
    assert metrics["windows_per_second"] == pytest.approx(metrics["tokens_per_second"] / 5, abs=0.1)
    for row in read_history(tiny_run):
        assert float(row["windows_per_second"]) == pytest.approx(float(row["tokens_per_second"]) / 5, abs=0.1)


def test_progress_bar_shows_tokens_per_second(tiny_corpus, tmp_path, monkeypatch):
    import lstm_textgen.training.callbacks as callbacks

    class Recorder(keras.callbacks.Callback):
        seen = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen.append(dict(logs))

    monkeypatch.setattr(callbacks, "progress_bar", lambda session, epochs: Recorder())
    train_tiny(tiny_corpus, tmp_path / "run")
    assert len(Recorder.seen) == 3 and all(logs["tokens/s"] > 0 for logs in Recorder.seen)


def cudnn_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "cuDNN" in r.getMessage()]


def test_cudnn_warning_names_the_setting_and_the_fix(tiny_corpus, tmp_path, caplog):
    caplog.set_level("INFO", logger="lstm_textgen")
    train_tiny(tiny_corpus, tmp_path / "plain")
    assert cudnn_warnings(caplog) == []
    train_tiny(tiny_corpus, tmp_path / "slow", "model.recurrent_dropout=0.1")
    [warning] = cudnn_warnings(caplog)
    assert warning.startswith("warning: model.recurrent_dropout=0.1") and "model.recurrent_dropout=0" in warning


def test_cudnn_blockers_for_masks_in_the_middle():
    from lstm_textgen.model.stack import cudnn_blockers
    zeros = load_config(None, ["embedding.path=vectors.txt", "embedding.missing=zeros"])
    blockers = cudnn_blockers(zeros.model, zeros.embedding)
    assert len(blockers) == 1 and "embedding.missing=random" in blockers[0]
    random = load_config(None, ["embedding.path=vectors.txt", "embedding.missing=random"])
    assert cudnn_blockers(random.model, random.embedding) == []
    no_vectors = load_config(None, ["embedding.missing=zeros"])
    assert cudnn_blockers(no_vectors.model, no_vectors.embedding) == []  # no vectors: no zero rows


def test_mixed_precision_trains_resets_the_policy_and_generates(tiny_corpus, tmp_path):
    from lstm_textgen.generation.sample import generate
    run = train_tiny(tiny_corpus, tmp_path / "run", "train.mixed_precision=true")
    assert keras.mixed_precision.global_policy().name == "float32"
    assert np.isfinite(float(read_history(run)[0]["val_loss"]))
    loaded = load_run(run)
    assert loaded.model.get_layer("lstm_1").dtype_policy.name == "mixed_float16"  # it did train in float16
    assert all(w.dtype == np.float32 for w in loaded.model.get_weights())
    x = np.array([[2, 3, 4, 5, 6]], np.int32)
    assert np.asarray(loaded.model(x)).dtype == np.float32
    assert generate(loaded, "the cat", length=5, random_seed=1)


def test_training_reads_the_memory_mapped_cache_and_drops_the_tokenized_arrays(tiny_corpus, tmp_path, monkeypatch):
    import gc
    import weakref

    from lstm_textgen.text import tokens
    from lstm_textgen.training import data, train as training

    tokenized, seen = [], []

    def tokenize(config, **kwargs):
        result = tokens.tokenize_corpus(config, **kwargs)
        tokenized.extend(weakref.ref(ids) for ids in result[1:3])
        return result

    def dataset(ids, *args, **kwargs):
        gc.collect()
        seen.append((ids, [ref() is None for ref in tokenized]))
        return data.make_dataset(ids, *args, **kwargs)

    monkeypatch.setattr(training, "tokenize_corpus", tokenize)
    monkeypatch.setattr(training, "make_dataset", dataset)
    run = train_tiny(tiny_corpus, tmp_path / "run")
    train_tiny(tiny_corpus, run, "train.epochs=2")  # the second run reads the cache
    assert len(tokenized) == 2 and len(seen) == 4  # tokenized once; val and train windows in each run
    for ids, freed in seen:
        assert isinstance(ids, np.memmap) and Path(ids.filename).parent == (run / "tokens").resolve()
        assert all(freed)  # no second copy of the ids in memory while training


def test_max_minutes_stops_between_batches_validates_and_finishes(tiny_corpus, tmp_path):
    from click.testing import CliRunner

    from lstm_textgen.cli import cli
    from conftest import TINY_SETTINGS

    run = tmp_path / "run"
    args = ["train", str(tiny_corpus), "--run", str(run), *[a for s in TINY_SETTINGS for a in ("--set", s)],
            "--set", "train.epochs=3", "--set", "train.steps_per_epoch=50", "--set", "train.max_minutes=0.001"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0 and "train.max_minutes=0.001 is spent" in result.stderr
    rows = read_history(run)
    assert len(rows) == 1 and float(rows[0]["val_loss"]) > 0  # the partial epoch was validated
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["tokens_seen"] < 50 * 8 * 5  # stopped inside the epoch
    assert (run / "model.keras").is_file() and load_run(run).model is not None
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "spent train.max_minutes; nothing to do" in again.stderr
    assert len(read_history(run)) == 1
    longer = CliRunner().invoke(cli, [*args[:-1], "train.max_minutes=30"])  # a safe change: it continues
    assert longer.exit_code == 0 and len(read_history(run)) == 3


@pytest.mark.slow
def test_logs_are_plain_lines_off_a_terminal_and_bars_on_one(tiny_corpus, tmp_path):
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    from conftest import TINY_SETTINGS

    def args(run):
        return [sys.executable, "-m", "lstm_textgen", "train", str(tiny_corpus), "--run", str(run),
                *[a for s in TINY_SETTINGS for a in ("--set", s)], "--set", "train.epochs=2"]

    piped = subprocess.run(args(tmp_path / "piped"), capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "\r" not in piped.stderr  # no bar redrawn into a log
    for chatter in ("oneDNN", "cuInit", "absl::InitializeLog", "cuda drivers", "CPU instructions"):
        assert chatter not in piped.stderr  # TensorFlow's start-up lines (quiet.py)
    assert re.search(r"^epoch 1/2: loss [\d.]+, accuracy [\d.]+, val_loss [\d.]+, val perplexity [\d.,]+, "
                     r"[\d,]+ tokens/s, [\d.]+ s$", piped.stderr, re.M)
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a new pty is 0 columns wide
    proc = subprocess.Popen(args(tmp_path / "tty"), stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        shown += chunk
    assert proc.wait(timeout=300) == 0
    text = shown.decode(errors="replace")
    assert "\r" in text and "3/3" in text and "3.00/3" not in text  # bars, counting whole batches
    assert not re.search(r"^epoch 1/2: loss", text, re.M)


def test_a_separate_validation_corpus_is_what_the_run_validates_on(tiny_corpus, tmp_path):
    from click.testing import CliRunner

    from lstm_textgen.cli import cli
    from conftest import TINY_SETTINGS

    held_out = tmp_path / "valid.txt"
    held_out.write_text("the cat sat on the zebra mat .\n" * 12, encoding="utf-8")
    run = train_tiny(tiny_corpus, tmp_path / "run", f"data.val_corpus={held_out}", "train.epochs=2")
    loaded = load_run(run)
    val = np.load(run / "tokens" / "val.npy")
    np.testing.assert_array_equal(val, loaded.tokenizer.encode_array(held_out.read_text()))  # every token of it
    train_ids = np.load(run / "tokens" / "train.npy")
    np.testing.assert_array_equal(train_ids, loaded.tokenizer.encode_array(tiny_corpus.read_text()))  # all of it
    assert "zebra" not in loaded.tokenizer.vocab  # the vocabulary is the corpus's
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_tokens"] == len(val) and metrics["val_chars"] == len(held_out.read_text())
    # The run's own validation loss is the model's on that text: the saved model scores it the same way.
    history = read_history(run)
    windows = np.lib.stride_tricks.sliding_window_view(val, 6)[::5]  # window 5 plus its next token, tiled
    model = keras.saving.load_model(run / "model.keras")
    probs = model.predict(windows[:, :5], verbose=0)
    loss = -np.mean(np.log(np.take_along_axis(probs, windows[:, 1:, None], axis=-1)))
    assert float(history[int(metrics["best_epoch"]) - 1]["val_loss"]) == pytest.approx(loss, rel=1e-4)
    flat = [a for s in TINY_SETTINGS for a in ("--set", s)]
    other = tmp_path / "other.txt"
    other.write_text("the dog sat on the mat .\n" * 12, encoding="utf-8")
    refused = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run), *flat, "--set", "train.epochs=3",
                                       "--set", f"data.val_corpus={other}"])
    assert refused.exit_code == 1 and "data.val_corpus" in refused.output  # resuming on other validation text
    info = CliRunner().invoke(cli, ["info", "--run", str(run)])
    assert f"validation tokens from {held_out})" in info.output


def test_library_train_through_the_public_api(tiny_corpus, tmp_path):
    run = train(load_config(None, [f"data.corpus={tiny_corpus}", f"train.run_dir={tmp_path / 'r'}", *TINY_SETTINGS]))
    assert (run / "model.keras").is_file()
