"""The learning rate over a run: the plateau rule, on its own and in real runs."""
import keras
import pytest

from lstm_textgen.resume import TrainingState

from conftest import train_tiny


def test_plateau_min_delta_counts_only_improvements_larger_than_it():
    """Keras' min_delta: 5.0 -> 4.95 is not better by 0.1, so the rate drops; the best stays 5.0, and 4.85
    (0.15 below it) is better."""
    from lstm_textgen.schedules import Plateau

    optimizer, state = keras.optimizers.Adam(learning_rate=1.0), TrainingState()
    plateau = Plateau(None, patience=1, factor=0.5, min_learning_rate=0.0, min_delta=0.1)
    rates = []
    for loss in [5.0, 4.95, 4.85, 4.8, None]:
        plateau.update(optimizer, state, loss)
        rates.append(state.learning_rate)
    assert rates == [1.0, 0.5, 0.5, 0.25, 0.125]  # no validation (None) is no improvement either
    assert state.lr_best == 4.85


def plateau_rates(losses, rate, patience, factor, minimum, min_delta=0.0):
    """The learning rate of each epoch under ReduceLROnPlateau's rule, worked out from the val losses."""
    rates, best, wait = [], None, 0
    for loss in losses:
        rates.append(rate)
        improved = best is None or loss < best - min_delta
        best = loss if improved else best
        wait = 0 if improved else wait + 1
        if wait >= patience and rate > minimum:
            rate, wait = max(rate * factor, minimum), 0
    return rates


def test_plateau_schedule_lowers_the_rate_logs_it_and_survives_resume(tiny_corpus, tmp_path):
    # A rate this high makes val_loss bounce, so the plateau rule has something to do.
    rate = 5.0
    settings = [f"train.learning_rate={rate}", "train.reduce_lr_patience=1", "train.reduce_lr_factor=0.5",
                "train.min_learning_rate=0.1", "train.early_stopping_patience=null"]
    whole = read_history(train_tiny(tiny_corpus, tmp_path / "whole", *settings, "train.epochs=6"))
    rates = [float(r["learning_rate"]) for r in whole]
    expected = plateau_rates([float(r["val_loss"]) for r in whole], rate, 1, 0.5, 0.1)
    assert rates == pytest.approx(expected, rel=1e-6)
    assert rates[-1] < rates[0]  # it did lower the rate
    train_tiny(tiny_corpus, tmp_path / "parts", *settings, "train.epochs=3")
    parts = read_history(train_tiny(tiny_corpus, tmp_path / "parts", *settings, "train.epochs=6"))
    assert [float(r["learning_rate"]) for r in parts] == pytest.approx(rates, rel=1e-6)
    assert [float(r["val_loss"]) for r in parts] == pytest.approx([float(r["val_loss"]) for r in whole], rel=1e-5)


def test_plateau_min_delta_from_the_config_lowers_the_rate_of_a_run_that_improves_slowly(tiny_corpus, tmp_path):
    settings = ["train.reduce_lr_patience=1", "train.reduce_lr_factor=0.5", "train.reduce_lr_min_delta=0.5",
                "train.early_stopping_patience=null", "train.epochs=4"]
    rows = read_history(train_tiny(tiny_corpus, tmp_path / "run", *settings))
    rates, losses = [float(r["learning_rate"]) for r in rows], [float(r["val_loss"]) for r in rows]
    rate = rates[0]
    assert rates == pytest.approx(plateau_rates(losses, rate, 1, 0.5, 0.0, min_delta=0.5), rel=1e-6)
    assert rates != pytest.approx(plateau_rates(losses, rate, 1, 0.5, 0.0), rel=1e-6)  # min_delta made the difference


def read_history(run_dir):
    import csv
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))
