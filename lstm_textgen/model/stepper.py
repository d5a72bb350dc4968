"""The trained Keras stack re-run in numpy, one token at a time with the recurrent state carried.

Generation imports neither TensorFlow nor Keras: the weights come from model.keras (model/weights.py) and
each new token costs one recurrent step. tests/model/test_stepper.py pins the probabilities to the Keras
model called on the whole context.
"""
from __future__ import annotations

import os

import numpy as np

from lstm_textgen.model.weights import ModelWeights


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) written as 0.5 tanh(x / 2) + 0.5: no overflow warning, in place on one copy."""
    out = np.multiply(x, 0.5)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


_ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
}
_PRECOMPUTE_LIMIT = 64_000_000  # floats: fold embedding @ kernel into one table when it is this small


def _activation(name) -> callable:
    if isinstance(name, dict):  # a serialised activation object
        name = name.get("config", {}).get("name", name.get("class_name"))
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise NotImplementedError(f"activation {name!r} is not supported by the numpy stepper") from None


class Recurrent:
    """One LSTM or GRU layer in numpy: step() for carried state, run() over a whole sequence."""

    def __init__(self, kind: str, config: dict, weights: dict):
        self.kind, self.units = kind, config["units"]
        cell = weights["cell"]["vars"]
        self.kernel, self.recurrent = cell[0].astype(np.float32), cell[1].astype(np.float32)
        gates = 4 if kind == "LSTM" else 3
        bias = cell[2].astype(np.float32) if len(cell) > 2 else np.zeros(gates * self.units, np.float32)
        self.reset_after = kind == "GRU" and config.get("reset_after", True)
        if self.reset_after:
            bias = bias.reshape(2, -1)
            self.bias, self.recurrent_bias = bias[0], bias[1]
        else:
            self.bias, self.recurrent_bias = bias, None
        self.act = _activation(config.get("activation", "tanh"))
        self.rec_act = _activation(config.get("recurrent_activation", "sigmoid"))
        self.input_table = None  # (vocab, gates*units) when folded with the embedding

    def fold_embedding(self, embedding: np.ndarray) -> None:
        if embedding.shape[0] * self.kernel.shape[1] <= _PRECOMPUTE_LIMIT:
            self.input_table = embedding @ self.kernel + self.bias

    def zero_state(self, batch: int) -> list[np.ndarray]:
        n = 2 if self.kind == "LSTM" else 1
        return [np.zeros((batch, self.units), np.float32) for _ in range(n)]

    def step(self, projected: np.ndarray, state: list[np.ndarray], parts: dict | None = None) -> list[np.ndarray]:
        """projected: (batch, gates*units) = x @ kernel + bias; returns the new state (h first). parts, when given,
        receives the step's gates and states by name (inspect): an LSTM's input_gate, forget_gate, output_gate,
        candidate, cell and hidden; a GRU's update_gate, reset_gate, candidate and hidden."""
        u = self.units
        h = state[0]
        if self.kind == "LSTM":  # Keras gate order: input, forget, cell, output
            z = h @ self.recurrent
            z += projected
            candidate = self.act(z[:, 2 * u:3 * u])
            gates = self.rec_act(z)  # the cell quarter is computed and ignored: one call beats three
            c = gates[:, u:2 * u] * state[1]
            c += gates[:, :u] * candidate
            new = [gates[:, 3 * u:] * self.act(c), c]
            if parts is not None:
                parts.update(input_gate=gates[:, :u], forget_gate=gates[:, u:2 * u], output_gate=gates[:, 3 * u:],
                             candidate=candidate, cell=c, hidden=new[0])
            return new
        if self.reset_after:
            rec = h @ self.recurrent + self.recurrent_bias
            z = self.rec_act(projected[:, :u] + rec[:, :u])
            r = self.rec_act(projected[:, u:2 * u] + rec[:, u:2 * u])
            candidate = self.act(projected[:, 2 * u:] + r * rec[:, 2 * u:])
        else:
            z = self.rec_act(projected[:, :u] + h @ self.recurrent[:, :u])
            r = self.rec_act(projected[:, u:2 * u] + h @ self.recurrent[:, u:2 * u])
            candidate = self.act(projected[:, 2 * u:] + (r * h) @ self.recurrent[:, 2 * u:])
        new = [z * h + (1.0 - z) * candidate]
        if parts is not None:
            parts.update(update_gate=z, reset_gate=r, candidate=candidate, hidden=new[0])
        return new

    def run(self, inputs: np.ndarray, mask: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(batch, time, features) -> outputs (batch, time, units) and the final h (batch, units).

        Masked steps keep the state and output zeros (what Keras' Bidirectional gives the next layer).
        """
        batch, steps = inputs.shape[:2]
        state = self.zero_state(batch)
        out = np.zeros((batch, steps, self.units), np.float32)
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for t in order:
            new = self.step(inputs[:, t] @ self.kernel + self.bias, state)
            keep = mask[:, t:t + 1]
            state = [np.where(keep, n, s) for n, s in zip(new, state)]
            out[:, t] = np.where(keep, state[0], 0.0)
        return out, state[0]


class Stepper:
    """Next-token logits of the trained stack, fed one token per call with the state carried."""

    def __init__(self, weights: ModelWeights):
        layers = weights.layers
        self.recurrent: list[Recurrent | tuple[Recurrent, Recurrent]] = []
        dense = []
        for layer in layers:
            kind, config, w = layer["class_name"], layer["config"], layer["weights"]
            if kind == "Embedding":
                self.embedding = w["vars"][0].astype(np.float32)
            elif kind in ("LSTM", "GRU"):
                self.recurrent.append(Recurrent(kind, config, w))
            elif kind == "Bidirectional":
                inner = config["layer"]
                sub = inner["class_name"]
                self.recurrent.append((Recurrent(sub, inner["config"], w["forward_layer"]),
                                       Recurrent(sub, inner["config"], w["backward_layer"])))
            elif kind == "Dense":
                dense.append((w["vars"][0].astype(np.float32), w["vars"][1].astype(np.float32),
                              config.get("activation", "linear")))
        (self.hidden_kernel, self.hidden_bias, hidden_act), (self.out_kernel, self.out_bias, _) = dense
        self.hidden_act = _activation(hidden_act)  # the output layer's softmax is applied by the sampler
        self.masking = any(layer["class_name"] == "Masking" for layer in layers)
        # Masking(0.0) masks a step whose embedding row is all zeros (Keras ignores mask_zero after it).
        self.masked_ids = ~self.embedding.any(axis=1) if self.masking else np.zeros(len(self.embedding), bool)
        self.any_masked = bool(self.masked_ids.any())
        self.bidirectional = any(isinstance(r, tuple) for r in self.recurrent)
        if not self.bidirectional:
            self.recurrent[0].fold_embedding(self.embedding)
        self.vocab_size = self.out_kernel.shape[1]

    def zero_state(self, batch: int) -> list:
        if self.bidirectional:  # the ids so far, per row: the backward half needs the whole context
            return [[] for _ in range(batch)]
        return [layer.zero_state(batch) for layer in self.recurrent]

    def repeat(self, state: list, n: int) -> list:
        """A one-row state as n identical rows."""
        if self.bidirectional:
            return [list(state[0]) for _ in range(n)]
        return [[np.repeat(part, n, axis=0) for part in layer] for layer in state]

    def select_rows(self, state: list, rows: list[int]) -> list:
        """The state of the given rows only, in that order (a batch that lets finished rows go)."""
        if self.bidirectional:
            return [state[r] for r in rows]
        return [[part[rows] for part in layer] for layer in state]

    def join_rows(self, first: list, second: list) -> list:
        """One state holding the rows of first, then those of second (a batch that takes in new rows)."""
        if self.bidirectional:
            return first + second
        return [[np.concatenate([a, b]) for a, b in zip(one, two)] for one, two in zip(first, second)]

    def prefill(self, seeds_ids: list[list[int]]) -> tuple[list, np.ndarray]:
        """Feed every seed (lengths may differ); returns the state and each row's next-token logits."""
        batch, lengths = len(seeds_ids), np.array([len(ids) for ids in seeds_ids])
        state = self.zero_state(batch)
        logits = np.zeros((batch, self.vocab_size), np.float32)
        for t in range(lengths.max()):
            column = np.array([ids[t] if t < len(ids) else 0 for ids in seeds_ids])  # 0: any id, inactive
            active = t < lengths
            step_logits, state = self.step(state, column, None if active.all() else active)
            logits[active] = step_logits[active]
        return state, logits

    def step(self, state: list, ids: np.ndarray, active: np.ndarray | None = None):
        """ids: (batch,) -> logits (batch, vocab), new state. Rows not `active` keep their state."""
        ids = np.asarray(ids, dtype=np.intp)
        if self.bidirectional:  # no carried state can stand in for the backward pass: re-run each row
            rows = [h + [int(i)] if active is None or active[r] else h for r, (h, i) in enumerate(zip(state, ids))]
            return np.concatenate([self.logits_full(np.array([h])) for h in rows]), rows
        x, new_state = self.advance(state, ids, active)
        return self.head(x), new_state

    def advance(self, state: list, ids: np.ndarray, active: np.ndarray | None = None, parts: list | None = None):
        """One recurrent step without the output layer: (the last layer's h (batch, units), new state). parts: one
        dict per layer, to receive each layer's gates and states (Recurrent.step)."""
        ids = np.asarray(ids, dtype=np.intp)
        keep = None
        if self.any_masked or active is not None:
            keep = ~self.masked_ids[ids] if self.any_masked else np.asarray(active, bool)
            if self.any_masked and active is not None:
                keep &= active
            if keep.all():
                keep = None
        first = self.recurrent[0]
        x = first.input_table[ids] if first.input_table is not None else self.embedding[ids] @ first.kernel + first.bias
        new_state = []
        for i, layer in enumerate(self.recurrent):
            if i > 0:
                x = x @ layer.kernel + layer.bias
            new = layer.step(x, state[i], None if parts is None else parts[i])
            if keep is not None:  # masked or finished rows keep their state
                new = [np.where(keep[:, None], n, s) for n, s in zip(new, state[i])]
            new_state.append(new)
            x = new[0]
        return x, new_state

    def head(self, h: np.ndarray) -> np.ndarray:
        """(batch, units) -> (batch, vocab) logits, before the softmax."""
        hidden = h @ self.hidden_kernel
        hidden += self.hidden_bias
        logits = self.hidden_act(hidden) @ self.out_kernel  # the one large product: (units, vocab) weights
        logits += self.out_bias
        return logits

    def logits_sequence(self, ids: np.ndarray) -> np.ndarray:
        """A `sequence` model on whole windows (batch, time) from a fresh state -> the logits after every step
        (batch, time, vocab), as the Keras model's return_sequences output (a masked step repeats the last h)."""
        batch, steps = ids.shape
        state, hidden = self.zero_state(batch), []
        for t in range(steps):
            h, state = self.advance(state, ids[:, t])
            hidden.append(h)
        logits = self.head(np.stack(hidden, axis=1).reshape(batch * steps, -1))
        return logits.reshape(batch, steps, -1)

    def logits_full(self, ids: np.ndarray) -> np.ndarray:
        """The model on whole sequences (batch, time) -> logits after the last step (batch, vocab)."""
        x = self.embedding[ids]
        mask = ~self.masked_ids[ids]
        for layer in self.recurrent:
            if isinstance(layer, tuple):
                (fwd, fwd_h), (bwd, bwd_h) = layer[0].run(x, mask), layer[1].run(x, mask, reverse=True)
                x, final = np.concatenate([fwd, bwd], axis=-1), np.concatenate([fwd_h, bwd_h], axis=-1)
            else:
                x, final = layer.run(x, mask)
        return self.head(final)  # return_sequences=False: the state after the last unmasked step


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def blas_threads():
    """A context in which numpy's BLAS uses only the cores no other process is keeping busy (at least one).

    A (1, units) @ (units, vocab) product per token is memory-bound and short: on an idle 2-core machine two
    threads read the output weights about twice as fast as one, but when the other core is busy, BLAS
    threads waiting for it made generation 12x slower than one thread alone.
    """
    from threadpoolctl import threadpool_limits

    cores = os.cpu_count() or 1
    try:  # runnable processes over the last minute; +1: this process, once running, is one of them
        idle = cores - os.getloadavg()[0] + 1
    except OSError:
        idle = 1
    return threadpool_limits(limits=max(1, min(cores, round(idle))), user_api="blas")
