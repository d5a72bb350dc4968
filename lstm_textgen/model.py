"""build_model(): the Sequential next-token stack of DESIGN.md, and compile_model() for training it."""
from __future__ import annotations

import numpy as np

from lstm_textgen.config import ModelConfig, TrainConfig


def recurrent_layer_names(config: ModelConfig) -> list[str]:
    return [f"{config.rnn}_{i + 1}" for i in range(config.layers)]


def build_model(config: ModelConfig, vocab_size: int, embedding_dim: int,
                embedding_matrix: np.ndarray | None = None, embedding_trainable: bool = True):
    """(batch, time) int ids -> (batch, vocab) for `last`, (batch, time, vocab) for `sequence`."""
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
                        return_sequences=not last or config.objective == "sequence", name=name)
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
    """Adam with the configured learning rate and clipnorm, sparse categorical cross-entropy."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate, clipnorm=config.clipnorm),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
