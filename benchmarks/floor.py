"""The arithmetic floor of one training step on this machine: how fast any implementation could go.

A step of a configuration (configs/reference.yaml by default: batch 128, window 20, Embedding 100, LSTM 64,
Dense 64, vocabulary 10,000, objective `last`) has to do these matrix products, whatever the framework:

- each LSTM layer's input projection of the window, its recurrent products forward and backward at every
  step, its weight/input gradients over the window (the first layer needs no input gradient);
- the Dense layer's forward product and its two gradient products;
- the softmax layer's forward product and its two gradient products (over every position for objective
  `sequence`, the last only for `last`), and the exponentials of the softmax;
- Adam's update of all the weights (the embedding and the softmax layer included: Adam's moments decay
  every step, touched or not; a tied output shares the embedding's).

Each product and the exponentials are timed on their own, best of several, with numpy (the BLAS matrix
product behind the issue's FLOP figure; a call from Python costs a microsecond or two), and Adam with
TensorFlow's one-pass ResourceApplyAdam kernel (numpy would need a temporary per operation), less the cost
of calling an empty tf.function. The times are summed. The sum leaves out everything else a step does (the
gates' element-wise arithmetic, the gathers, dropout, the loss), so the windows/s it gives is an upper bound
that no implementation reaches. It is printed next to the 2048 x 2048 matrix product's GFLOP/s.

    python -m benchmarks floor [--config configs/quality.yaml --corpus FILE] [--repeats 5]

--corpus replaces the config's data.corpus: a config with train.batch_size auto (quality.yaml) takes its batch
from the corpus's size, so cost it with the text it trains on (War and Peace for the recorded figures). The
train benchmark runs measure() in a fresh process for its table. Run nothing else meanwhile: the figures are
for this machine as it is during the run.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from benchmarks.common import ROOT, add_corpus
from benchmarks.results import figure

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
TARGET = 10_500  # windows/s that issue 5 asks of the reference configuration


class Shape(NamedTuple):
    batch: int
    window: int
    dim: int
    units: int
    layers: int
    dense: int
    vocab: int
    sequence: bool  # objective sequence: a softmax row per position
    tied: bool

    @classmethod
    def of(cls, path: Path, corpus: Path | None = None) -> "Shape":
        from lstm_textgen.config import load_config
        from lstm_textgen.training.data import with_auto
        from lstm_textgen.text.tokens import tokenize_corpus

        c = load_config(path, [f"data.corpus={corpus}"] if corpus else [])
        batch = c.train.batch_size
        if batch == "auto":  # as training works it out from the corpus and the config's budget
            batch = with_auto(c, len(tokenize_corpus(c.data)[1]), c.data.max_vocab).train.batch_size
        return cls(batch, c.data.window_size, c.embedding.dim, c.model.units, c.model.layers,
                   c.model.dense_units, c.data.max_vocab, c.model.objective == "sequence", c.model.tie_weights)


def best_seconds(fn, calls: int, repeats: int) -> float:
    """Best mean seconds per call of fn over `repeats` runs of `calls` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return min(times)


def products(s: Shape):
    """(name, a shape, b shape, transpose a, transpose b, times a step) of every matrix product of a step."""
    n, g, rows = s.batch * s.window, 4 * s.units, s.batch * (s.window if s.sequence else 1)
    out = []
    for layer in range(s.layers):
        d = s.dim if layer == 0 else s.units
        name = f"LSTM {layer + 1}"
        out += [
            (f"{name} input projection (time*batch, {d}) x ({d}, {g})", (n, d), (d, g), False, False, 1),
            (f"{name} recurrent forward ({s.batch}, {s.units}) x ({s.units}, {g})", (s.batch, s.units),
             (s.units, g), False, False, s.window),
            (f"{name} recurrent backward ({s.batch}, {g}) x ({s.units}, {g})^T", (s.batch, g), (s.units, g),
             False, True, s.window),
            (f"{name} recurrent kernel gradient (time*batch, {s.units})^T x (time*batch, {g})", (n, s.units), (n, g),
             True, False, 1),
            (f"{name} input kernel gradient (time*batch, {d})^T x (time*batch, {g})", (n, d), (n, g), True, False, 1),
            (f"{name} input gradient (time*batch, {g}) x ({d}, {g})^T", (n, g), (d, g), False, True, 1),  # to the
        ]  # layer below, or to the trained embedding rows
    out += [
        (f"Dense forward ({rows}, {s.units}) x ({s.units}, {s.dense})", (rows, s.units), (s.units, s.dense), False, False, 1),
        (f"Dense input gradient ({rows}, {s.dense}) x ({s.units}, {s.dense})^T", (rows, s.dense), (s.units, s.dense),
         False, True, 1),
        (f"Dense kernel gradient ({rows}, {s.units})^T x ({rows}, {s.dense})", (rows, s.units), (rows, s.dense),
         True, False, 1),
        (f"softmax layer forward ({rows}, {s.dense}) x ({s.dense}, {s.vocab})", (rows, s.dense), (s.dense, s.vocab),
         False, False, 1),
        (f"softmax layer input gradient ({rows}, {s.vocab}) x ({s.dense}, {s.vocab})^T", (rows, s.vocab),
         (s.dense, s.vocab), False, True, 1),
        (f"softmax layer kernel gradient ({rows}, {s.dense})^T x ({rows}, {s.vocab})", (rows, s.dense),
         (rows, s.vocab), True, False, 1),
    ]
    return out


def parameter_count(s: Shape) -> int:
    lstm = sum((d + s.units + 1) * 4 * s.units for d in [s.dim] + [s.units] * (s.layers - 1))
    return (s.vocab * s.dim + lstm + (s.units + 1) * s.dense + s.vocab * (0 if s.tied else s.dense) + s.vocab)


def add_arguments(parser) -> None:
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "reference.yaml",
                        help="the configuration whose step to cost")
    parser.add_argument("--repeats", type=int, default=5)
    add_corpus(parser, "the text that sets train.batch_size auto (default: the config's data.corpus)",
               optional=True)


def measure(config: Path, repeats: int, corpus: Path | None = None) -> dict:
    """The floor of one step of config: its rows (name, seconds), their sum, windows/s and targets/s it allows,
    and numpy's 2048 x 2048 product in GFLOP/s."""
    import tensorflow as tf

    shape = Shape.of(config, corpus)
    rng = np.random.default_rng(0)
    big = rng.standard_normal((2048, 2048), dtype=np.float32)
    gflops = 2 * 2048 ** 3 / best_seconds(lambda: big @ big, 5, repeats) / 1e9

    rows = []
    for name, a_shape, b_shape, ta, tb, count in products(shape):
        a, b = rng.standard_normal(a_shape, dtype=np.float32), rng.standard_normal(b_shape, dtype=np.float32)
        a_op, b_op = (a.T if ta else a), (b.T if tb else b)
        calls = 2000 if a.size < 100_000 else 200
        rows.append((f"{name}{f' x {count}' if count > 1 else ''}",
                     best_seconds(lambda: a_op @ b_op, calls, repeats) * count))
    softmax_rows = shape.batch * (shape.window if shape.sequence else 1)
    logits = rng.standard_normal((softmax_rows, shape.vocab), dtype=np.float32)
    rows.append((f"softmax exponentials ({softmax_rows}, {shape.vocab})",
                 best_seconds(lambda: np.exp(logits), 20 if softmax_rows > 1000 else 200, repeats)))

    size = parameter_count(shape)
    var, m, v = (tf.Variable(rng.standard_normal(size, dtype=np.float32) * 0.01) for _ in range(3))
    v.assign(tf.abs(v))
    grad = tf.constant(rng.standard_normal(size, dtype=np.float32))

    @tf.function
    def adam():
        tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m.handle, v=v.handle, beta1_power=0.9, beta2_power=0.999,
                                     lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-7, grad=grad, use_locking=False)

    @tf.function
    def nothing():
        return tf.constant(0.0)
    adam_s = best_seconds(adam, 50, repeats) - best_seconds(nothing, 500, repeats)
    rows.append((f"Adam on {size:,} weights (TensorFlow's ResourceApplyAdam)", adam_s))

    total = sum(r[1] for r in rows)
    return {"batch": shape.batch, "rows": rows, "seconds": total, "windows_per_second": shape.batch / total,
            "targets_per_second": softmax_rows / total, "gflops": gflops}


def run(args) -> tuple[list[dict], dict]:
    floor = measure(args.config, args.repeats, args.corpus)
    rows, total, windows, batch = floor["rows"], floor["seconds"], floor["windows_per_second"], floor["batch"]
    reference = args.config.name == "reference.yaml"
    width = max(len(r[0]) for r in rows)
    print(f"numpy float32 2048 x 2048 matrix product: {floor['gflops']:.0f} GFLOP/s on this machine now")
    print()
    print(f"{'what a step of ' + args.config.name + ' must compute':{width}}  {'ms':>7}")
    for name, seconds in rows:
        print(f"{name:{width}}  {seconds * 1e3:7.3f}")
    print(f"{f'sum: the floor of one step of {batch} windows':{width}}  {total * 1e3:7.3f}")
    print()
    print(f"upper bound: {windows:,.0f} windows/s, {floor['targets_per_second']:,.0f} targets/s"
          + (f" ({windows / TARGET:.2f}x the 10,500 target)" if reference else ""))
    print("(not counted: the gates' element-wise arithmetic, gathers, dropout, the loss)")
    figures = [figure(name, seconds * 1e3, "ms") for name, seconds in rows]
    figures += [figure("floor of one step", total * 1e3, "ms"),
                figure("upper bound", windows, "windows/s", main=True),
                figure("upper bound, targets", floor["targets_per_second"], "targets/s", main=True)]
    return figures, figure("numpy 2048 x 2048 matrix product", floor["gflops"], "GFLOP/s")
