"""The model: the Sequential next-token stack of DESIGN.md, compile_model(), and the training-time variants
(stateful streams, tied output weights) whose weights are copied back into the plain stack that is saved."""
from __future__ import annotations

import contextlib

import keras
import numpy as np

from lstm_textgen.config import EmbeddingConfig, ModelConfig, TrainConfig


def cudnn_blockers(model: ModelConfig, embedding: EmbeddingConfig) -> list[str]:
    """Why Keras would not use its fused cuDNN LSTM/GRU kernel on a GPU, one line per reason, with the fix.

    Keras 3 (keras/src/backend/tensorflow/rnn.py cudnn_ok) needs tanh/sigmoid activations, use_bias, no
    unroll (all fixed here), no recurrent_dropout (layers/rnn/lstm.py inner_loop), and a strictly
    right-padded mask.
    """
    reasons = []
    if model.recurrent_dropout > 0:
        reasons.append(f"model.recurrent_dropout={model.recurrent_dropout} keeps Keras off the fused cuDNN "
                       "kernel on a GPU (several times slower); set --set model.recurrent_dropout=0")
    if mid_sequence_masks(embedding):
        reasons.append("embedding.missing=zeros masks the steps of words missing from the vectors, mid-window, "
                       "which the fused cuDNN kernel cannot do: on a GPU the slower kernel is used; set "
                       "--set embedding.missing=random")
    return reasons


def mid_sequence_masks(embedding: EmbeddingConfig) -> bool:
    """Zero rows of a pretrained matrix make the Masking layer skip steps in the middle of a window."""
    return bool(embedding.path) and embedding.missing == "zeros"


@contextlib.contextmanager
def precision(mixed: bool):
    """Keras' global dtype policy: mixed_float16 inside when asked, and the previous policy back after."""
    previous = keras.mixed_precision.global_policy()
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_model(config: ModelConfig, vocab_size: int, embedding_dim: int,
                embedding_matrix: np.ndarray | None = None, embedding_trainable: bool = True,
                use_cudnn: bool | str = "auto"):
    """(batch, time) int ids -> (batch, vocab) for `last`, (batch, time, vocab) for `sequence`.

    use_cudnn=False when masks may skip mid-window steps: Keras' cuDNN path asserts right-padded masks.
    """
    rnn_class = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[config.rnn]
    uniform = {} if config.init_range is None else {  # PyTorch's word LM starts these uniform in +-0.1
        "initializer": keras.initializers.RandomUniform(-config.init_range, config.init_range)}
    layers = [
        keras.Input(shape=(None,), dtype="int32", name="ids"),
        keras.layers.Embedding(
            vocab_size, embedding_dim, mask_zero=True, name="embedding",
            trainable=embedding_trainable or embedding_matrix is None,
            **{f"embeddings_{k}": v for k, v in uniform.items()}),
        # Masks the steps whose embedding row is all zeros (pretrained words missing with missing=zeros).
        keras.layers.Masking(mask_value=0.0, name="masking"),
    ]
    names = config.recurrent_layers()
    for i, name in enumerate(names):
        last = i == len(names) - 1
        dropout = config.dropout if i or config.input_dropout is None else config.input_dropout
        rnn = rnn_class(config.units, dropout=dropout, recurrent_dropout=config.recurrent_dropout,
                        use_cudnn=use_cudnn, return_sequences=not last or config.objective == "sequence", name=name)
        layers.append(keras.layers.Bidirectional(rnn, name=name) if config.bidirectional else rnn)
    layers += [
        keras.layers.Dense(config.dense_units, activation=config.dense_activation, name="dense"),
        keras.layers.Dropout(config.dense_dropout, name="dense_dropout"),
        keras.layers.Dense(vocab_size, activation="softmax", name="next_word", dtype="float32",
                           **{f"kernel_{k}": v for k, v in uniform.items()}),
    ]
    model = keras.Sequential(layers, name="lstm_textgen")
    if embedding_matrix is not None:  # set, not an initializer: a Constant would copy the matrix into config.json
        model.get_layer("embedding").set_weights([embedding_matrix])
    return model


def compile_model(model, config: TrainConfig) -> None:
    """Adam (or plain SGD) with the configured learning rate and clipping (and moving average of the weights),
    sparse categorical cross-entropy."""
    optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[config.optimizer]
    average = {"use_ema": True, "ema_momentum": config.ema_momentum} if config.ema_momentum else {}
    model.compile(
        optimizer=optimizer(learning_rate=config.learning_rate, clipnorm=config.clipnorm,
                            global_clipnorm=config.global_clipnorm, **average),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if average:  # fit() would end by copying the average into the model; validation.Averaged swaps it in instead
        model.optimizer.finalize_variable_values = lambda var_list: None  # (a resumed run's next fit() goes on raw)


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


class Models:
    """The model that trains and the plain stack that is saved: one object, so what is saved is explicit.

    They are the same Keras model unless the run is stateful (recurrent layers carrying their state on a
    fixed batch) or tied (an output layer reading the embedding). Then `training` is a clone of `plain`
    whose weights start as plain's (a pretrained matrix included) and are copied back by export().
    """

    def __init__(self, plain, model_config: ModelConfig, train_config: TrainConfig):
        self.plain, self.tie = plain, model_config.tie_weights
        stateful = train_config.stateful
        self.training = plain if not (stateful or self.tie) else self._clone(
            plain, stateful, train_config.batch_size if stateful else None)

    def _clone(self, plain, stateful: bool, batch: int | None):
        made = {}

        def clone(layer):
            if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)) and stateful:
                made[layer.name] = layer.__class__.from_config({**layer.get_config(), "stateful": True})
            elif layer.name == "next_word" and self.tie:
                made[layer.name] = TiedSoftmax(made["embedding"], name="next_word", dtype="float32")
            else:
                made[layer.name] = layer.__class__.from_config(layer.get_config())
            return made[layer.name]

        ids = keras.Input(batch_shape=(batch, None), dtype="int32", name="ids")
        model = keras.models.clone_model(plain, input_tensors=ids, clone_function=clone)
        _copy(plain, model, self.tie)
        return model

    def export(self):
        """The plain stack, holding the training model's current weights."""
        if self.training is not self.plain:
            _copy(self.training, self.plain, self.tie)
        return self.plain

    def load_weights(self, path) -> None:
        """Load a checkpoint: a state file (.weights.h5) is the training model's own; an epoch checkpoint
        (.keras) holds the plain stack, whose weights are then copied into the training model."""
        if self.training is self.plain or str(path).endswith(".weights.h5"):
            self.training.load_weights(path)
            return
        self.plain.load_weights(path)
        _copy(self.plain, self.training, self.tie)


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
