"""What the model holds while it trains and validates: a stateful run's streams (Streams: carried from window to
window, fresh at each epoch and validation, saved with the training state and restored from it) and, with
train.ema_momentum, the optimizer's moving average of the weights (Averaged). Both act at on_test_begin;
the run directory's own callbacks (callbacks.py) then save what was validated.
"""
from __future__ import annotations

import keras

from lstm_textgen.model.stack import reset_streams


def carried_states(model) -> list:
    """The recurrent state variables of stateful layers (a stateful run's streams), in layer order."""
    return [v for layer in model.layers if getattr(layer, "stateful", False) and layer.states is not None
            for v in layer.states]


class Streams(keras.callbacks.Callback):
    """A stateful run's streams, the one owner of their state: fresh at each epoch start (but not when resuming
    mid-epoch) and for each validation pass; their state after the last step is saved with the training state
    (its Streams part) and put back when a run resumes mid-epoch."""

    def __init__(self, session):
        super().__init__()
        self.state, self.pending = session.state, bool(session.state.streams.carried)
        session.savers.append(self.save)

    def on_train_begin(self, logs=None):
        if self.pending:  # a run resumed mid-epoch: its streams go on where they stood
            for variable, value in zip(carried_states(self.model), self.state.streams.carried):
                variable.assign(value)
            self.pending = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.state.progress.step == 0:
            reset_streams(self.model)

    def on_test_begin(self, logs=None):
        reset_streams(self.model)

    def save(self, mid_epoch: bool) -> None:
        self.state.streams.carried = [v.numpy().tolist() for v in carried_states(self.model)]


class Averaged(keras.callbacks.Callback):
    """train.ema_momentum: the optimizer's moving average of the weights (Keras' use_ema) is what validation
    measures and BestModel saves; it is swapped out again before Backup commits the state, so training goes on
    from the raw weights and a resumed run continues exactly.

    Keras' SwapEMAWeights does the same on TensorFlow by adding and subtracting (which rounds the raw weights)
    and, to reach ModelCheckpoint, keeps the average in the model until the next epoch starts, past the point
    where the state is saved. This swap copies, and ends at the epoch end.
    """

    def __init__(self):
        super().__init__()
        self.swapped = False

    def on_test_begin(self, logs=None):
        if not self.swapped:
            self._swap()

    def on_epoch_end(self, epoch, logs=None):
        if self.swapped:
            self._swap()

    def _swap(self) -> None:
        optimizer = self.model.optimizer
        for weight, average in zip(optimizer._trainable_variables, optimizer._model_variables_moving_average):
            raw = keras.ops.convert_to_numpy(weight)
            weight.assign(average)
            average.assign(raw)
        self.swapped = not self.swapped
