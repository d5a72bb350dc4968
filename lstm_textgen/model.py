"""build_model(): the Sequential next-token stack of DESIGN.md, and compile_model() for training it."""
from __future__ import annotations

import contextlib

import numpy as np

from lstm_textgen.config import Config, ModelConfig, TrainConfig


def recurrent_layer_names(config: ModelConfig) -> list[str]:
    return [f"{config.rnn}_{i + 1}" for i in range(config.layers)]


def cudnn_blockers(config: Config) -> list[str]:
    """Why Keras would not use its fused cuDNN LSTM/GRU kernel on a GPU, one line per reason, with the fix.

    Keras 3 (keras/src/backend/tensorflow/rnn.py cudnn_ok) needs tanh/sigmoid activations, use_bias, no
    unroll (all fixed here), no recurrent_dropout (layers/rnn/lstm.py inner_loop), and a strictly
    right-padded mask.
    """
    reasons = []
    if config.model.recurrent_dropout > 0:
        reasons.append(f"model.recurrent_dropout={config.model.recurrent_dropout} keeps Keras off the fused cuDNN "
                       "kernel on a GPU (several times slower); set --set model.recurrent_dropout=0")
    if mid_sequence_masks(config):
        reasons.append("embedding.missing=zeros masks the steps of words missing from the vectors, mid-window, "
                       "which the fused cuDNN kernel cannot do: on a GPU the slower kernel is used; set "
                       "--set embedding.missing=random")
    return reasons


def mid_sequence_masks(config: Config) -> bool:
    """Zero rows of a pretrained matrix make the Masking layer skip steps in the middle of a window."""
    return bool(config.embedding.path) and config.embedding.missing == "zeros"


@contextlib.contextmanager
def precision(mixed: bool):
    """Keras' global dtype policy: mixed_float16 inside when asked, and the previous policy back after."""
    import keras

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
    import keras

    rnn_class = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[config.rnn]
    layers = [
        keras.Input(shape=(None,), dtype="int32", name="ids"),
        keras.layers.Embedding(
            vocab_size, embedding_dim, mask_zero=True, name="embedding",
            trainable=embedding_trainable or embedding_matrix is None),
        # Masks the steps whose embedding row is all zeros (pretrained words missing with missing=zeros).
        keras.layers.Masking(mask_value=0.0, name="masking"),
    ]
    names = recurrent_layer_names(config)
    for i, name in enumerate(names):
        last = i == len(names) - 1
        rnn = rnn_class(config.units, dropout=config.dropout, recurrent_dropout=config.recurrent_dropout,
                        use_cudnn=use_cudnn, return_sequences=not last or config.objective == "sequence", name=name)
        layers.append(keras.layers.Bidirectional(rnn, name=name) if config.bidirectional else rnn)
    layers += [
        keras.layers.Dense(config.dense_units, activation="relu", name="dense"),
        keras.layers.Dropout(config.dense_dropout, name="dense_dropout"),
        keras.layers.Dense(vocab_size, activation="softmax", name="next_word", dtype="float32"),
    ]
    model = keras.Sequential(layers, name="lstm_textgen")
    if embedding_matrix is not None:  # set, not an initializer: a Constant would copy the matrix into config.json
        model.get_layer("embedding").set_weights([embedding_matrix])
    return model


def compile_model(model, config: TrainConfig) -> None:
    """Adam (or plain SGD) with the configured learning rate and clipping, sparse categorical cross-entropy."""
    import keras

    optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[config.optimizer]
    model.compile(
        optimizer=optimizer(learning_rate=config.learning_rate, clipnorm=config.clipnorm,
                            global_clipnorm=config.global_clipnorm),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
