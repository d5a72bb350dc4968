"""The two signatures every model format carries, as TensorFlow functions over the run's own Keras model:
`step(token, h0, c0, h1, ...) -> probabilities, h0_next, c0_next, ...` (one token per row, the recurrent state
carried by the caller, each layer's Keras cell called as the layer calls it) and `window(tokens) -> probabilities`
(the saved model itself on whole windows: the next token's distribution for a `last` run, one per position for a
`sequence` run). A token whose embedding row is all zeros (a pretrained word missing from the vectors, masked by
the model's Masking layer) keeps the state, as in the model and the numpy stepper."""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from lstm_textgen.errors import ExportError
from lstm_textgen.export.formats import PROBABILITIES


@dataclass
class Signatures:
    """step and window as tf.functions with their input signatures, and the names of their tensors."""
    step: tf.types.experimental.GenericFunction
    window: tf.types.experimental.GenericFunction
    step_specs: list[tf.TensorSpec]
    window_specs: list[tf.TensorSpec]
    states: list[tuple[str, int]]  # (name, units) of each state input, in order: h0, c0, h1, c1, ...
    sequence: bool  # window gives one distribution per position

    def tensors(self) -> dict:
        """Each signature's inputs and outputs with their shapes (None: any size) and dtypes, for the manifest."""
        vocab = int(self.window.get_concrete_function().structured_outputs[PROBABILITIES].shape[-1])
        window_out = [None, None, vocab] if self.sequence else [None, vocab]
        return {
            "step": {"inputs": [_spec(s) for s in self.step_specs],
                     "outputs": [{"name": PROBABILITIES, "shape": [None, vocab], "dtype": "float32"},
                                 *({"name": f"{n}_next", "shape": [None, u], "dtype": "float32"}
                                   for n, u in self.states)]},
            "window": {"inputs": [_spec(s) for s in self.window_specs],
                       "outputs": [{"name": PROBABILITIES, "shape": window_out, "dtype": "float32"}]},
        }


def _spec(spec: tf.TensorSpec) -> dict:
    return {"name": spec.name, "shape": list(spec.shape.as_list()), "dtype": spec.dtype.name}


def signatures(model, window_shape: tuple = (None, None), int8_embedding: bool = False) -> Signatures:
    """step and window over model (a run's saved Keras stack, in float32). window_shape: the window's (batch,
    time), None where any size is allowed (TFLite needs both fixed: its converter lowers the recurrent loop only
    over a known shape). int8_embedding: the embedding kept as int8 rows with a scale each (TFLite's int8
    quantization leaves a table read by index in float32); window is then the step unrolled over the fixed
    window, so that both read the one int8 table."""
    if any(isinstance(layer, keras.layers.Bidirectional) for layer in model.layers):
        raise ExportError("the run's model is bidirectional: its backward half reads each window from the end, so "
                          "no state can be carried one token at a time; export a run trained without "
                          "model.bidirectional")
    rnns = [layer for layer in model.layers if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU))]
    head = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    lookup = _lookup(model.get_layer("embedding"), int8_embedding)
    states = [(f"{part}{i}", layer.units) for i, layer in enumerate(rnns)
              for part in (("h", "c") if isinstance(layer, keras.layers.LSTM) else ("h",))]
    step_specs = [tf.TensorSpec([None], tf.int32, name="token"),
                  *(tf.TensorSpec([None, units], tf.float32, name=name) for name, units in states)]

    def advance(token, state):
        """One token through the recurrent layers: the last h and the new state (a list)."""
        x = lookup(token)
        keep = tf.reduce_any(tf.not_equal(x, 0.0), axis=-1, keepdims=True)  # Masking(0.0): a zero row keeps
        out, at = [], 0
        for layer in rnns:
            n = 2 if isinstance(layer, keras.layers.LSTM) else 1
            old = list(state[at:at + n])
            _, new = layer.cell(x, old if n > 1 else old[0], training=False)
            out += [tf.where(keep, a, b) for a, b in zip(tf.nest.flatten(new), old)]
            at, x = at + n, out[at]
        return x, out

    def probabilities(x):
        for layer in head:
            x = layer(x, training=False)
        return x

    def step(token, *state):
        x, new = advance(token, state)
        return {PROBABILITIES: probabilities(x), **{f"{name}_next": v for (name, _), v in zip(states, new)}}

    sequence = bool(rnns[-1].return_sequences)
    window_specs = [tf.TensorSpec(list(window_shape), tf.int32, name="tokens")]

    def window(tokens):
        if not int8_embedding:
            return {PROBABILITIES: model(tokens, training=False)}
        state = [tf.zeros([window_shape[0], units]) for _, units in states]
        hidden = []
        for t in range(window_shape[1]):
            x, state = advance(tokens[:, t], state)
            hidden.append(x)
        return {PROBABILITIES: probabilities(tf.stack(hidden, axis=1) if sequence else hidden[-1])}

    return Signatures(tf.function(step, input_signature=step_specs), tf.function(window, input_signature=window_specs),
                      step_specs, window_specs, states, sequence)


def _lookup(embedding, int8: bool):
    """token ids -> their embedding rows: the layer's variable, or (int8) rows rounded to int8 with a scale each."""
    if not int8:
        return lambda token: tf.gather(embedding.embeddings, token)
    table = embedding.embeddings.numpy()
    scale = np.abs(table).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    rows = tf.constant(np.round(table / scale[:, None]).astype(np.int8))
    scales = tf.constant(scale.astype(np.float32)[:, None])
    return lambda token: tf.cast(tf.gather(rows, token), tf.float32) * tf.gather(scales, token)


def float32_model(model):
    """model with every layer computing in float32 (a run trained with mixed precision computes in float16),
    the same weights."""
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers):
        return model
    plain = keras.models.clone_model(model, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "dtype": "float32"}))
    plain.set_weights(model.get_weights())
    return plain
