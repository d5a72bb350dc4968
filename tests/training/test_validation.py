"""train.ema_momentum: validation and the saved model see the moving average of the weights, training goes on
from the raw weights, and a stopped run resumes exactly."""
import csv
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_textgen.training.callbacks import StepCounter
from lstm_textgen.cli import cli

from conftest import TINY_SETTINGS, train_tiny, train_tiny_stopped_at

MOMENTUM = 0.6  # low, so a few steps move the average well away from the last weights


def history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def column(rows, name):
    return [float(r[name]) for r in rows]


def weights(model):
    return [np.array(v) for v in model.trainable_variables]


def record(monkeypatch):
    """The trained weights after every step, and the weights each validation pass measures (StepCounter's
    on_test_end runs after every callback's on_test_begin)."""
    raw, validated = [], []
    monkeypatch.setattr(StepCounter, "on_train_batch_end",
                        lambda self, batch, logs=None, original=StepCounter.on_train_batch_end:
                        (original(self, batch, logs), raw.append(weights(self.model))))
    monkeypatch.setattr(StepCounter, "on_test_end", lambda self, logs=None: validated.append(weights(self.model)))
    return raw, validated


@pytest.mark.parametrize("step", [[], ["train.unrolled=false"]], ids=["unrolled", "keras"])
def test_validation_and_the_saved_model_see_the_moving_average(tiny_corpus, tmp_path, monkeypatch, step):
    import keras

    raw, validated = record(monkeypatch)
    run = train_tiny(tiny_corpus, tmp_path / "run", *step, "train.steps_per_epoch=5", "model.dropout=0.2",
                     f"train.ema_momentum={MOMENTUM}")

    average = raw[0]  # Keras' first update copies the weights (optimizer.iterations is 0)
    for step_weights in raw[1:]:
        average = [MOMENTUM * a + (1 - MOMENTUM) * w for a, w in zip(average, step_weights)]
    assert len(raw) == 5 and len(validated) == 1
    for got, want, last in zip(validated[0], average, raw[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        assert not np.allclose(want, last, rtol=1e-3, atol=1e-5)  # the average is not the trained weights
    saved = keras.saving.load_model(run / "model.keras")
    for got, want in zip(weights(saved), average):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_a_run_without_it_validates_the_trained_weights(tiny_corpus, tmp_path, monkeypatch):
    raw, validated = record(monkeypatch)
    train_tiny(tiny_corpus, tmp_path / "run", "train.steps_per_epoch=5")
    for got, want in zip(validated[0], raw[-1]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("extra", [[], ["train.stateful=true", "model.tie_weights=true", "train.batch_size=3"]],
                         ids=["windows", "tied-stateful"])
def test_a_run_stopped_mid_epoch_resumes_exactly(tiny_corpus, tmp_path, monkeypatch, extra):
    """Stopped in epoch 1 of 3, the resumed run finishes that epoch in one fit() and trains on in another: each
    epoch end swaps the average in and out, and the first fit() must not end by leaving the average in."""
    settings = [*extra, "train.epochs=3", "train.steps_per_epoch=6", "model.dropout=0.2",
                f"train.ema_momentum={MOMENTUM}"]
    whole = history(train_tiny(tiny_corpus, tmp_path / "whole", *settings))
    train_tiny_stopped_at(monkeypatch, 3, tiny_corpus, tmp_path / "parts", *settings)
    parts = history(train_tiny(tiny_corpus, tmp_path / "parts", *settings))
    assert [r["epoch"] for r in parts] == ["1", "2", "3"]
    for name in ("loss", "val_loss"):
        assert column(parts, name) == pytest.approx(column(whole, name), rel=1e-6)


def test_a_run_resumed_at_an_epoch_end_equals_an_uninterrupted_one(tiny_corpus, tmp_path):
    settings = ["train.epochs=3", "model.dropout=0.2", f"train.ema_momentum={MOMENTUM}"]
    whole = history(train_tiny(tiny_corpus, tmp_path / "whole", *settings))
    train_tiny(tiny_corpus, tmp_path / "parts", *settings[1:], "train.epochs=1")
    parts = history(train_tiny(tiny_corpus, tmp_path / "parts", *settings))
    for name in ("loss", "val_loss"):
        assert column(parts, name) == pytest.approx(column(whole, name), rel=1e-6)


def cli_train(corpus, run_dir, *settings):
    flat = [a for s in [*TINY_SETTINGS, *settings] for a in ("--set", s)]
    return CliRunner().invoke(cli, ["train", str(corpus), "--run", str(run_dir), *flat])


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.1"])
def test_a_momentum_outside_zero_to_one_is_one_error_line(tiny_corpus, tmp_path, value):
    result = cli_train(tiny_corpus, tmp_path / "run", f"train.ema_momentum={value}")
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert (f"train.ema_momentum must be between 0 and 1 (exclusive), or null for no averaging, got {value}"
            in errors[0])
    assert not (tmp_path / "run").exists()


def test_averaging_cannot_be_switched_on_when_a_run_resumes(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    from lstm_textgen.run.rundir import load_run

    result = cli_train(load_run(run).config.data.corpus, run, "train.epochs=3", "train.ema_momentum=0.99")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "train.ema_momentum (None -> 0.99)" in errors[0], result.output
