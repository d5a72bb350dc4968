"""The learning rate over a run: keras.callbacks.ReduceLROnPlateau's rule with its counters kept in the training
state, so that a resumed run continues the schedule where it stood; a decay along the run's budget; or both, the
plateau rule lowering the decay's whole curve."""
from __future__ import annotations

import logging
import math

import keras

from lstm_textgen.training.callbacks import Session
from lstm_textgen.run.state import TrainingState

log = logging.getLogger("lstm_textgen")


def curve_scale(state: TrainingState) -> float:
    """What the plateau rule has multiplied the decay's curve by so far (1 before its first drop)."""
    return state.schedule.lr_scales[-1] if state.schedule.lr_scales else 1.0


class Plateau(keras.callbacks.Callback):
    """keras.callbacks.ReduceLROnPlateau's rule on val_loss, with its wait counter and rate kept in the
    training state, so a resumed run continues the schedule where it stood. Given the run's Decay, the rule
    multiplies the decay's curve instead of the rate (train.lr_decay with train.reduce_lr_patience): the rate
    keeps falling along the budget, and falls sooner when validation stalls."""

    def __init__(self, session: Session, patience: int, factor: float, min_learning_rate: float,
                 min_delta: float = 0.0, decay: "Decay | None" = None):
        super().__init__()
        self.session, self.patience, self.factor = session, patience, factor
        self.min_learning_rate, self.min_delta, self.decay = min_learning_rate, min_delta, decay

    def on_epoch_end(self, epoch, logs=None):
        self.update(self.model.optimizer, self.session.state, self.session.state.progress.rows[-1]["val_loss"])

    def update(self, optimizer, state: TrainingState, val_loss: float | None) -> None:
        """Keras' rule: better means below the best so far by more than min_delta (and only that moves the best)."""
        improved = val_loss is not None and (state.schedule.lr_best is None or val_loss < state.schedule.lr_best - self.min_delta)
        if improved:
            state.schedule.lr_best = val_loss
        state.schedule.lr_wait = 0 if improved else state.schedule.lr_wait + 1
        if self.decay is not None:
            self.lower_curve(state)
            return
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        if state.schedule.lr_wait >= self.patience and rate > self.min_learning_rate:
            new_rate = max(rate * self.factor, self.min_learning_rate)
            optimizer.learning_rate = new_rate
            log.info(f"val_loss has not improved for {state.schedule.lr_wait} epochs: learning rate {rate:.3g} -> {new_rate:.3g}")
            state.schedule.lr_wait = 0
            rate = new_rate
        state.schedule.learning_rate = rate

    def lower_curve(self, state: TrainingState) -> None:
        """The rule on the decay's curve: its starting rate is multiplied by the factor, never below the floor
        the curve ends at. The scale after each epoch is kept in the state (lr_scales), so a resumed or
        rewound run goes on along the same curve."""
        scale = curve_scale(state)
        top = self.decay.rate * scale
        if state.schedule.lr_wait >= self.patience and top > self.decay.floor:
            scale = max(top * self.factor, self.decay.floor) / self.decay.rate
            log.info(f"val_loss has not improved for {state.schedule.lr_wait} epochs: the learning-rate curve now starts at "
                     f"{self.decay.rate * scale:.3g}, not {top:.3g}")
            state.schedule.lr_wait = 0
        state.schedule.lr_scales.append(scale)


class Decay(keras.callbacks.Callback):
    """train.lr_decay: before every step the rate is set from how much of the run is done, falling from
    train.learning_rate to train.min_learning_rate in a line or along a half cosine (Loshchilov & Hutter's SGDR
    without restarts). Done is the larger of the share of train.max_minutes spent and the share of train.epochs'
    steps taken, whichever budget ends the run; both are in the training state, so a resumed run continues the
    curve (a time budget makes the curve follow the clock, as the run's end does). With the plateau rule
    beside it, the curve's starting rate is train.learning_rate times the rule's scale (curve_scale)."""

    def __init__(self, session: Session, kind: str, rate: float, floor: float, max_minutes: float | None,
                 total_steps: int):
        super().__init__()
        self.session, self.kind, self.rate, self.floor = session, kind, rate, floor
        self.max_seconds = None if max_minutes is None else max_minutes * 60.0
        self.total_steps = max(total_steps, 1)

    def done(self) -> float:
        shares = [self.session.state.progress.global_step / self.total_steps]
        if self.max_seconds is not None:
            shares.append(self.session.spent() / self.max_seconds)
        return min(max(shares), 1.0)

    def rate_at(self, done: float) -> float:
        left = 1.0 - done if self.kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))
        top = max(self.rate * curve_scale(self.session.state), self.floor)
        return self.floor + (top - self.floor) * left

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.rate_at(self.done())
