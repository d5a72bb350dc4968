"""What the model holds while it validates: fresh streams for a stateful run (StreamResets) and, with
train.ema_momentum, the optimizer's moving average of the weights (Averaged). Both act at on_test_begin;
the run directory's own callbacks (callbacks.py) then save what was validated.
"""
from __future__ import annotations

import keras

from lstm_textgen.model.stack import reset_streams
from lstm_textgen.run.state import TrainingState


class StreamResets(keras.callbacks.Callback):
    """Fresh streams at each epoch start (but not when resuming mid-epoch) and for each validation pass."""

    def __init__(self, state: TrainingState):
        super().__init__()
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        if self.state.step == 0:
            reset_streams(self.model)

    def on_test_begin(self, logs=None):
        reset_streams(self.model)


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
