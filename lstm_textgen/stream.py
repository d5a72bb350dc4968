"""Training-time variants of the model: stateful streams (truncated BPTT) and tied output weights.

The training model is a clone of build_model()'s stack; what is saved (model.keras, checkpoints/) is
always the plain DESIGN.md stack, with the training model's weights copied into it (exported_model).
"""
from __future__ import annotations

import weakref

import keras

_PLAIN: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # training model -> its plain stack


@keras.saving.register_keras_serializable(package="lstm_textgen")
class TiedSoftmax(keras.layers.Layer):
    """softmax(x @ embedding.T + bias): the output layer that shares the embedding matrix."""

    def __init__(self, embedding=None, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # as Dense: the mask passes through
        self._embedding = lambda: embedding.embeddings  # a function, so Keras does not track the layer twice

    def build(self, input_shape):
        vocab_size = self._embedding().shape[0]
        self.bias = self.add_weight(shape=(vocab_size,), initializer="zeros", name="bias")

    def call(self, x):  # (batch, [time,] dim) -> (batch, [time,] vocab)
        kernel = keras.ops.cast(keras.ops.transpose(self._embedding()), x.dtype)
        logits = keras.ops.matmul(x, kernel) + keras.ops.cast(self.bias, x.dtype)
        return keras.ops.softmax(keras.ops.cast(logits, "float32"), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self._embedding().shape[0])


def needs_training_model(config) -> bool:
    return config.train.stateful or config.model.tie_weights


def training_model(plain, config):
    """A clone of plain for training: stateful recurrent layers on a fixed batch, a tied output layer.

    Its weights start as plain's (a pretrained matrix included); exported_model() copies them back.
    """
    stateful, tie = config.train.stateful, config.model.tie_weights
    made = {}

    def clone(layer):
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)) and stateful:
            made[layer.name] = layer.__class__.from_config({**layer.get_config(), "stateful": True})
        elif layer.name == "next_word" and tie:
            made[layer.name] = TiedSoftmax(made["embedding"], name="next_word", dtype="float32")
        else:
            made[layer.name] = layer.__class__.from_config(layer.get_config())
        return made[layer.name]

    batch = config.train.batch_size if stateful else None
    ids = keras.Input(batch_shape=(batch, None), dtype="int32", name="ids")
    model = keras.models.clone_model(plain, input_tensors=ids, clone_function=clone)
    _copy(plain, model, tie)
    _PLAIN[model] = (plain, tie)
    return model


def exported_model(model):
    """The plain stack with model's current weights, for a training model; any other model as it is."""
    if model not in _PLAIN:
        return model
    plain, tie = _PLAIN[model]
    _copy(model, plain, tie)
    return plain


def load_weights(model, path) -> None:
    """model.load_weights(path), where path may be a checkpoint of the plain stack of a training model."""
    if model not in _PLAIN or str(path).endswith(".weights.h5"):  # state files are the training model's own
        model.load_weights(path)
        return
    plain, tie = _PLAIN[model]
    plain.load_weights(path)
    _copy(plain, model, tie)


def _copy(source, target, tie: bool) -> None:
    """Layer by layer (the state of stateful layers is not a weight); the tied kernel is embedding.T."""
    for layer in target.layers:
        weights = source.get_layer(layer.name).get_weights()
        if layer.name == "next_word" and tie:  # keep the bias; the plain Dense gets the embedding transposed
            bias = weights[-1]
            weights = [bias] if isinstance(layer, TiedSoftmax) else [source.get_layer("embedding").get_weights()[0].T, bias]
        if weights:
            layer.set_weights(weights)


def reset_streams(model) -> None:
    """Zero the carried state of every stateful layer (each epoch and each validation pass starts fresh)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


class StreamResets(keras.callbacks.Callback):
    """Fresh streams at each epoch start (but not when resuming mid-epoch) and for each validation pass."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        if self.state.step == 0:
            reset_streams(self.model)

    def on_test_begin(self, logs=None):
        reset_streams(self.model)
