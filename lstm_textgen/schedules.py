"""The learning rate over a run: keras.callbacks.ReduceLROnPlateau's rule with its counters kept in the training
state, so that a resumed run continues the schedule where it stood."""
from __future__ import annotations

import logging

import keras

from lstm_textgen.callbacks import Session
from lstm_textgen.resume import TrainingState

log = logging.getLogger("lstm_textgen")


class Plateau(keras.callbacks.Callback):
    """keras.callbacks.ReduceLROnPlateau's rule on val_loss, with its wait counter and rate kept in the
    training state, so a resumed run continues the schedule where it stood."""

    def __init__(self, session: Session, patience: int, factor: float, min_learning_rate: float,
                 min_delta: float = 0.0):
        super().__init__()
        self.session, self.patience, self.factor = session, patience, factor
        self.min_learning_rate, self.min_delta = min_learning_rate, min_delta

    def on_epoch_end(self, epoch, logs=None):
        self.update(self.model.optimizer, self.session.state, self.session.state.rows[-1]["val_loss"])

    def update(self, optimizer, state: TrainingState, val_loss: float | None) -> None:
        """Keras' rule: better means below the best so far by more than min_delta (and only that moves the best)."""
        improved = val_loss is not None and (state.lr_best is None or val_loss < state.lr_best - self.min_delta)
        if improved:
            state.lr_best = val_loss
        state.lr_wait = 0 if improved else state.lr_wait + 1
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        if state.lr_wait >= self.patience and rate > self.min_learning_rate:
            new_rate = max(rate * self.factor, self.min_learning_rate)
            optimizer.learning_rate = new_rate
            log.info(f"val_loss has not improved for {state.lr_wait} epochs: learning rate {rate:.3g} -> {new_rate:.3g}")
            state.lr_wait = 0
            rate = new_rate
        state.learning_rate = rate
