"""The learning rate over a run: the plateau rule and the decay along the run's budget, on their own and in
real runs."""
import math

import keras
import pytest

from lstm_textgen.training.callbacks import Session
from lstm_textgen.run.state import Progress, TrainingState
from lstm_textgen.training.schedules import Decay

from conftest import train_tiny


def test_plateau_min_delta_counts_only_improvements_larger_than_it():
    """Keras' min_delta: 5.0 -> 4.95 is not better by 0.1, so the rate drops; the best stays 5.0, and 4.85
    (0.15 below it) is better."""
    from lstm_textgen.training.schedules import Plateau

    optimizer, state = keras.optimizers.Adam(learning_rate=1.0), TrainingState()
    plateau = Plateau(None, patience=1, factor=0.5, min_learning_rate=0.0, min_delta=0.1)
    rates = []
    for loss in [5.0, 4.95, 4.85, 4.8, None]:
        plateau.update(optimizer, state, loss)
        rates.append(state.schedule.learning_rate)
    assert rates == [1.0, 0.5, 0.5, 0.25, 0.125]  # no validation (None) is no improvement either
    assert state.schedule.lr_best == 4.85


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


def test_decay_falls_in_a_line_or_a_half_cosine_by_the_larger_share_of_the_budget_spent(tmp_path):
    state = TrainingState(Progress(global_step=0))
    session = Session(tmp_path, state, 1, 1)
    linear = Decay(session, "linear", 1.0e-2, 1.0e-3, max_minutes=None, total_steps=10)
    cosine = Decay(session, "cosine", 1.0e-2, 1.0e-3, max_minutes=None, total_steps=10)
    quarter = 1.0e-3 + 9.0e-3 * 0.5 * (1 + math.cos(math.pi / 4))
    for done, line, cos in ((0.0, 1.0e-2, 1.0e-2), (0.5, 5.5e-3, 5.5e-3), (0.25, 7.75e-3, quarter),
                            (1.0, 1.0e-3, 1.0e-3)):
        assert linear.rate_at(done) == pytest.approx(line) and cosine.rate_at(done) == pytest.approx(cos)
    state.progress.global_step = 3
    assert linear.done() == pytest.approx(0.3)  # no time budget: the steps
    timed = Decay(session, "linear", 1.0e-2, 0.0, max_minutes=1.0, total_steps=10)
    session.spent_before = 45.0  # three quarters of the minute: more than 3 of 10 steps
    assert timed.done() == pytest.approx(0.75, abs=0.01)
    session.spent_before, state.progress.global_step = 0.0, 20  # past the last step: the floor, not below it
    assert timed.done() == 1.0 and timed.rate_at(timed.done()) == 0.0
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(learning_rate=1.0), "mse")
    linear.set_model(model)
    state.progress.global_step = 5
    linear.on_train_batch_begin(0)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(5.5e-3)


def test_a_decaying_run_trains_each_step_at_its_rate_and_resumes_on_the_same_curve(tiny_corpus, tmp_path):
    settings = ["train.lr_decay=linear", "train.learning_rate=0.01", "train.min_learning_rate=0.001",
                "train.epochs=3"]
    whole = read_history(train_tiny(tiny_corpus, tmp_path / "whole", *settings))
    steps = 3  # TINY_SETTINGS' steps_per_epoch: the rate of an epoch's last step is in its row
    expected = [0.001 + 0.009 * (1 - (steps * (e + 1) - 1) / (3 * steps)) for e in range(3)]
    assert [float(r["learning_rate"]) for r in whole] == pytest.approx(expected, rel=1e-5)
    train_tiny(tiny_corpus, tmp_path / "parts", *settings[:-1], "train.epochs=1", "train.max_minutes=null")
    # A run of one epoch decays over one epoch: its second session, for 3, continues from where that left off.
    parts = read_history(train_tiny(tiny_corpus, tmp_path / "parts", *settings))
    assert float(parts[0]["learning_rate"]) == pytest.approx(0.001 + 0.009 * (1 - 2 / 3), rel=1e-5)
    assert [float(r["learning_rate"]) for r in parts[1:]] == pytest.approx(expected[1:], rel=1e-5)


def test_the_plateau_rule_beside_a_decay_lowers_the_whole_curve_never_below_its_floor(tmp_path):
    from lstm_textgen.training.schedules import Plateau

    state = TrainingState(Progress(global_step=0))
    session = Session(tmp_path, state, 1, 1)
    decay = Decay(session, "linear", 1.0e-2, 1.0e-3, max_minutes=None, total_steps=10)
    plateau = Plateau(session, patience=2, factor=0.25, min_learning_rate=1.0e-3, decay=decay)
    optimizer = keras.optimizers.Adam(learning_rate=1.0)
    for loss in [5.0, 4.0, 4.5, 4.2, 3.9, 4.0, 4.1, 4.0, 4.0]:
        plateau.update(optimizer, state, loss)
    # Two epochs without a better loss quarter the curve's start (after epoch 4: 1e-2 -> 2.5e-3); after epoch 7
    # a quarter would be below the 1e-3 the curve ends at, so the start stops there; after epoch 9 it stays.
    assert state.schedule.lr_scales == pytest.approx([1, 1, 1, 0.25, 0.25, 0.25, 0.1, 0.1, 0.1])
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == 1.0  # the curve sets the rate, not the rule
    assert state.schedule.learning_rate is None
    state.schedule.lr_scales = [1.0, 0.25]
    assert decay.rate_at(0.0) == pytest.approx(2.5e-3)
    assert decay.rate_at(0.5) == pytest.approx(1.0e-3 + 1.5e-3 * 0.5)  # between the lowered start and the floor
    assert decay.rate_at(1.0) == pytest.approx(1.0e-3)
    state.progress.rows, state.progress.epoch_ends = [{"epoch": 1, "val_loss": 5.0}, {"epoch": 2, "val_loss": 5.1}], [[1, 1, 1.0]] * 2
    state.rewind(1)  # back to epoch 1's checkpoint: the curve as it stood then
    assert state.schedule.lr_scales == [1.0] and decay.rate_at(0.0) == pytest.approx(1.0e-2)


def test_a_run_with_both_schedules_trains_along_the_lowered_curve(tiny_corpus, tmp_path):
    settings = ["train.lr_decay=linear", "train.learning_rate=0.01", "train.min_learning_rate=0.001",
                "train.reduce_lr_patience=1", "train.reduce_lr_factor=0.5", "train.reduce_lr_min_delta=100",
                "train.early_stopping_patience=null", "train.epochs=3"]
    run = train_tiny(tiny_corpus, tmp_path / "run", *settings)
    steps = 3  # TINY_SETTINGS' steps_per_epoch: the rate of an epoch's last step is in its row
    scales = [1.0, 0.5, 0.25]  # no epoch after the first is 100 below the best: each one halves the curve
    expected = [0.001 + (0.01 * scale - 0.001) * (1 - (steps * (e + 1) - 1) / (3 * steps))
                for e, scale in enumerate([1.0, 1.0, 0.5])]  # epoch e trains with the scale set after e - 1
    assert [float(r["learning_rate"]) for r in read_history(run)] == pytest.approx(expected, rel=1e-5)
    assert TrainingState.load(run).schedule.lr_scales == pytest.approx(scales)


@pytest.mark.parametrize("override, message", [
    (["train.lr_decay=linear", "train.min_learning_rate=0.01"],
     "train.lr_decay falls from train.learning_rate 0.001 to train.min_learning_rate 0.01, which must be lower"),
    (["train.lr_decay=step"], "train.lr_decay must be 'none' or 'linear' or 'cosine', got 'step'")])
def test_decay_settings_that_cannot_work_are_refused(override, message):
    from lstm_textgen.config import load_config
    from lstm_textgen.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_config(None, override)
