"""The arithmetic floor of one reference training step on this machine: how fast any implementation could go.

A step of the reference configuration (batch 128, window 20, Embedding 100, LSTM 64, Dense 64, vocabulary
10,000, objective `last`) has to do these matrix products, whatever the framework:

- the LSTM's input projection of the window, its 20 recurrent products forward and 20 backward, and the
  three weight/input gradients over the window;
- the softmax layer's forward product and its two gradient products, and the exponentials of the softmax;
- Adam's update of all 1.7 million weights (the embedding and the softmax layer included: Adam's
  moments decay every step, touched or not).

Each product and the exponentials are timed on their own, best of several, with numpy (the BLAS matrix
product behind the issue's FLOP figure; a call from Python costs a microsecond or two), and Adam with
TensorFlow's one-pass ResourceApplyAdam kernel (numpy would need a temporary per operation), less the cost
of calling an empty tf.function. The times are summed. The sum leaves out everything else a step does (the gates' element-wise arithmetic,
the gathers, dropout, the gradient of the Dense layer, the loss), so the windows/s it gives is an upper
bound that no implementation reaches. It is printed next to the 2048 x 2048 matrix product's GFLOP/s,
the figure behind the issue's "physical limit" (9.1 MFLOP a window at that rate).

    .venv/bin/python benchmarks/bench_floor.py [--repeats 5]

Run nothing else meanwhile: the figures are for this machine as it is during the run.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BATCH, WINDOW, DIM, UNITS, DENSE, VOCAB = 128, 20, 100, 64, 64, 10_000
TARGET = 10_500  # windows/s that issue 5 asks of the reference configuration
FLOP_PER_WINDOW = 9.1e6  # the count


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


def products():
    """(name, a shape, b shape, transpose a, transpose b, times a step) of every matrix product of a step."""
    n, g = BATCH * WINDOW, 4 * UNITS
    return [
        ("LSTM input projection (time*batch, 100) x (100, 256)", (n, DIM), (DIM, g), False, False, 1),
        ("LSTM recurrent forward (128, 64) x (64, 256)", (BATCH, UNITS), (UNITS, g), False, False, WINDOW),
        ("LSTM recurrent backward (128, 256) x (64, 256)^T", (BATCH, g), (UNITS, g), False, True, WINDOW),
        ("LSTM recurrent kernel gradient (time*batch, 64)^T x (time*batch, 256)", (n, UNITS), (n, g), True, False, 1),
        ("LSTM input kernel gradient (time*batch, 100)^T x (time*batch, 256)", (n, DIM), (n, g), True, False, 1),
        ("LSTM input gradient (time*batch, 256) x (100, 256)^T", (n, g), (DIM, g), False, True, 1),
        ("softmax layer forward (128, 64) x (64, 10000)", (BATCH, DENSE), (DENSE, VOCAB), False, False, 1),
        ("softmax layer input gradient (128, 10000) x (64, 10000)^T", (BATCH, VOCAB), (DENSE, VOCAB), False, True, 1),
        ("softmax layer kernel gradient (128, 64)^T x (128, 10000)", (BATCH, DENSE), (BATCH, VOCAB), True, False, 1),
    ]


def parameter_count() -> int:
    return VOCAB * DIM + (DIM + UNITS + 1) * 4 * UNITS + (UNITS + 1) * DENSE + (DENSE + 1) * VOCAB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import tensorflow as tf

    rng = np.random.default_rng(0)
    big = rng.standard_normal((2048, 2048), dtype=np.float32)
    gflops = 2 * 2048 ** 3 / best_seconds(lambda: big @ big, 5, args.repeats) / 1e9

    rows = []
    for name, a_shape, b_shape, ta, tb, count in products():
        a, b = rng.standard_normal(a_shape, dtype=np.float32), rng.standard_normal(b_shape, dtype=np.float32)
        a_op, b_op = (a.T if ta else a), (b.T if tb else b)
        calls = 2000 if a.size < 100_000 else 200
        rows.append((f"{name}{f' x {count}' if count > 1 else ''}",
                     best_seconds(lambda: a_op @ b_op, calls, args.repeats) * count))
    logits = rng.standard_normal((BATCH, VOCAB), dtype=np.float32)
    rows.append(("softmax exponentials (128, 10000)", best_seconds(lambda: np.exp(logits), 200, args.repeats)))

    size = parameter_count()
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
    adam_s = best_seconds(adam, 50, args.repeats) - best_seconds(nothing, 500, args.repeats)
    rows.append((f"Adam on {size:,} weights (TensorFlow's ResourceApplyAdam)", adam_s))

    width = max(len(r[0]) for r in rows)
    print(f"numpy float32 2048 x 2048 matrix product: {gflops:.0f} GFLOP/s on this machine now")
    print(f"  -> the issue's 'physical limit' at that rate: {gflops * 1e9 / FLOP_PER_WINDOW:,.0f} windows/s "
          f"(9.1 MFLOP a window; the issue measured 190 GFLOP/s -> 21,000)")
    print()
    print(f"{'what a step must compute':{width}}  {'ms':>7}")
    for name, seconds in rows:
        print(f"{name:{width}}  {seconds * 1e3:7.3f}")
    total = sum(r[1] for r in rows)
    print(f"{'sum: the floor of one step of 128 windows':{width}}  {total * 1e3:7.3f}")
    print()
    print(f"upper bound: {BATCH / total:,.0f} windows/s ({BATCH / total / TARGET:.2f}x the 10,500 target); "
          f"at the issue's 190 GFLOP/s: {BATCH / total * 190 / gflops:,.0f}")
    print("(not counted: the gates' element-wise arithmetic, gathers, dropout, the loss, the Dense layer)")

if __name__ == "__main__":
    main()
