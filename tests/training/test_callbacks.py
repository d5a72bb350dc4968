"""The run-directory callbacks on their own: early stopping, the time budget and a
diverging loss."""
import keras
import pytest

from lstm_textgen.training.callbacks import EarlyStop, Session, StepCounter, TimeBudget
from lstm_textgen.errors import TrainingError
from lstm_textgen.run.state import Budget, Progress, TrainingState


def tiny_model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # as fit() sets it before the first callback
    return model


def test_early_stop_counts_the_epochs_since_the_best_and_stops_at_the_patience(tmp_path):
    state = TrainingState(Progress(epoch=0))
    stop = EarlyStop(Session(tmp_path, state, 1, 1), patience=2)
    stop.set_model(tiny_model())
    for epoch, best in enumerate([1, 2, 2, 2]):  # the best val_loss came at epochs 1 and 2, then none
        state.progress.epoch, state.best.best_epoch = epoch + 1, best
        stop.on_epoch_end(epoch)
        assert state.patience.wait == epoch + 1 - best
        assert stop.model.stop_training == (state.patience.wait >= 2) == state.patience.stopped_early


def test_the_time_budget_counts_every_session_and_stops_after_the_batch_that_spends_it(tmp_path):
    state = TrainingState(Progress(step=5), budget=Budget(spent_seconds=30.0))  # earlier sessions spent half a minute
    session = Session(tmp_path, state, 1, 1)
    budget = TimeBudget(session, max_minutes=1.0)
    budget.set_model(tiny_model())
    budget.on_train_batch_end(0)
    assert budget.stopped_at is None and not budget.model.stop_training  # 30 s of the 60 spent: train on
    session.spent_before = 60.0  # as if the earlier sessions had spent all of it
    budget.on_train_batch_end(1)
    assert budget.model.stop_training and budget.stopped_at == 5
    budget.on_epoch_end(0)
    assert state.budget.spent_seconds >= 60.0
    unlimited = TimeBudget(Session(tmp_path, TrainingState(budget=Budget(spent_seconds=1e9)), 1, 1), max_minutes=None)
    unlimited.set_model(tiny_model())
    unlimited.on_train_batch_end(0)
    assert not unlimited.model.stop_training


def test_a_loss_that_is_no_longer_a_number_stops_training_with_what_to_do(tmp_path):
    """The fused softmax of the unrolled step caps the loss (it never overflows); Keras' step, a GRU or float16
    can still reach nan or inf, and a run must not go on training on it."""
    state = TrainingState()
    counter = StepCounter(Session(tmp_path, state, 10, 2))
    counter.on_train_batch_end(0, {"loss": 4.2})
    with pytest.raises(TrainingError, match=r"training diverged: the loss is nan at epoch 1, step 2; .*--set "
                                            r"train.learning_rate"):
        counter.on_train_batch_end(1, {"loss": float("nan")})
