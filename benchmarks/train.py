"""Training speed: ours against a plain Keras loop, PyTorch and the arithmetic floor, for two model shapes, one run.

The reference configuration (configs/reference.yaml): word-level Tiny Shakespeare, vocabulary 10,000,
window 20, Embedding 100, LSTM 64 (dropout 0.1, recurrent dropout 0.1), Dense 64, Dropout 0.5, softmax,
batch 128, Adam, objective `last`. Each measurement runs in a fresh process:

- ours:         lstm_textgen's train() on configs/reference.yaml: the unrolled CPU step
                (lstm_textgen/model/step.py); windows/s of epoch 2 from history.csv (epoch 1 includes tracing);
- ours, no rec. drop: the same run with model.recurrent_dropout=0: the work nn.LSTM does (it has no recurrent
                dropout), so its ratio to PyTorch compares like with like;
- ours, Keras step: the same run with train.unrolled=false (Keras' own LSTM loop and Adam);
- plain Keras:  a keras.Sequential of the same stack (mask_zero + Masking, as DESIGN.md fixes it) and
                model.fit on tf.data windows with sparse targets: what a Keras tutorial does;
- PyTorch:      nn.Embedding + nn.LSTM + the same head, Adam, if torch imports (torch is not a
                dependency); nn.LSTM has no recurrent dropout, so it does less work than the others;
- ours, sequence: objective `sequence` (a target at every position), in targets/s;
- floor:        the floor benchmark's upper bound: the step's matrix products, exponentials and Adam
                pass timed alone and summed (no implementation reaches it).

The shape configs/quality.yaml ships, trained on --corpus (War and Peace for the recorded figures: 40 streams,
its train.batch_size auto), stateful windows of 35, a target at every position, in tokens (targets)/s:

- ours:         train() on configs/quality.yaml, tokens/s of epoch 2 (with its train.bfloat16: bfloat16 products
                where the CPU has bfloat16 matrix units, float32 elsewhere; the start line in a run says which);
- PyTorch:      the same stack in PyTorch: Embedding, dropout, nn.LSTM (its layers, dropout between them),
                dropout, Linear (the Dense layer, its activation), dropout, the output tied to the
                embedding when quality.yaml ties it; Adam, each gradient clipped as clipnorm, state carried
                from window to window and detached (truncated BPTT), as the PyTorch word LM trains;
- floor:        the floor benchmark with --config configs/quality.yaml (float32's products: not a bound for
                bfloat16 ones).

    python -m benchmarks train --corpus warpeace_input.txt [--steps 200] [--repeats 2]

The machine may be shared, so the kinds run in turn, --repeats times, and the best of each is printed;
ratios between kinds of one run are what to compare.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile

from benchmarks.common import ROOT, SHIPPED_CORPUS, add_corpus, run_child
from benchmarks.results import figure

OURS = r"""
import csv, json, sys
from pathlib import Path
from lstm_textgen.config import load_config
from lstm_textgen.text.tokens import tokenize_corpus
from lstm_textgen.training.data import KEYS, with_auto
from lstm_textgen.training.train import train
config_path, run_dir, steps, *overrides = sys.argv[1:]
given = load_config(config_path, overrides)  # the auto settings as the file's own budget works them out
given = with_auto(given, len(tokenize_corpus(given.data)[1]), given.data.max_vocab)
fixed = [f"train.batch_size={given.train.batch_size}", *(f"model.{k}={getattr(given.model, k)}" for k in KEYS)]
config = load_config(config_path, [f"train.run_dir={run_dir}", "train.epochs=2", "train.max_minutes=null",
                     f"train.steps_per_epoch={steps}", "train.sample_every=null",
                     "train.early_stopping_patience=null", *fixed, *overrides])
train(config, mode="restart")
row = list(csv.DictReader(open(Path(run_dir) / "history.csv")))[-1]
print(json.dumps({"windows_per_second": float(row["windows_per_second"]),
                  "targets_per_second": float(row["tokens_per_second"])}))
"""

PLAIN_KERAS = r"""
import json, sys, time
import keras, numpy as np, tensorflow as tf
from lstm_textgen.config import DataConfig
from lstm_textgen.text.tokens import tokenize_corpus
corpus, steps = sys.argv[1], int(sys.argv[2])
V, W, B = 10000, 20, 128
_, ids, _, _ = tokenize_corpus(DataConfig(corpus=corpus, max_vocab=V, window_size=W))
tokens = tf.constant(ids)
n = len(ids) - W
starts = tf.data.Dataset.range(n).shuffle(n, seed=1, reshuffle_each_iteration=True).repeat()
windows = starts.batch(B, drop_remainder=True).map(lambda s: tf.gather(tokens, s[:, None] + tf.range(W + 1, dtype=tf.int64)))
dataset = windows.map(lambda w: (w[:, :-1], w[:, -1])).prefetch(tf.data.AUTOTUNE)
model = keras.Sequential([
    keras.Input((W,), dtype="int32"),
    keras.layers.Embedding(V, 100, mask_zero=True),
    keras.layers.Masking(0.0),
    keras.layers.LSTM(64, dropout=0.1, recurrent_dropout=0.1),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dropout(0.5),
    keras.layers.Dense(V, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(dataset, steps_per_epoch=20, epochs=1, verbose=0)  # tracing and warm-up
start = time.perf_counter()
model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
print(json.dumps({"windows_per_second": steps * B / (time.perf_counter() - start)}))
"""

TIMED = r"""
for _ in range(20):  # warm-up
    step()
start = time.perf_counter()
for _ in range(steps):
    step()
seconds = time.perf_counter() - start
print(json.dumps({"windows_per_second": steps * B / seconds, "targets_per_second": steps * B * TARGETS / seconds,
                  "threads": torch.get_num_threads()}))
"""

TORCH = r"""
import json, sys, time
import numpy as np, torch
from torch import nn
from lstm_textgen.config import DataConfig
from lstm_textgen.text.tokens import tokenize_corpus
corpus, steps = sys.argv[1], int(sys.argv[2])
V, W, B, TARGETS = 10000, 20, 128, 1
_, ids, _, _ = tokenize_corpus(DataConfig(corpus=corpus, max_vocab=V, window_size=W))
ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
offsets = torch.arange(W + 1)

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding, self.dropout = nn.Embedding(V, 100, padding_idx=0), nn.Dropout(0.1)
        self.lstm = nn.LSTM(100, 64, batch_first=True)
        self.head = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, V))

    def forward(self, x):
        out, _ = self.lstm(self.dropout(self.embedding(x)))
        return self.head(out[:, -1])

model = Model()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
generator = torch.Generator().manual_seed(1)

def step():
    w = ids[torch.randint(0, len(ids) - W, (B,), generator=generator)[:, None] + offsets]
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(w[:, :-1]), w[:, -1])
    loss.backward()
    optimizer.step()
""" + TIMED


TORCH_QUALITY = r"""
import json, sys, time
import numpy as np, torch
from torch import nn
from lstm_textgen.config import load_config
from lstm_textgen.training.data import with_auto
from lstm_textgen.text.tokens import tokenize_corpus
config_path, steps, corpus = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = load_config(config_path, [f"data.corpus={corpus}"])
_, ids, _, _ = tokenize_corpus(c.data)
c = with_auto(c, len(ids), c.data.max_vocab)  # the auto settings as the ours row trains them
m, B, W = c.model, c.train.batch_size, c.data.window_size
TARGETS = W  # a target at every position
n = len(ids) // B
streams = torch.from_numpy(np.asarray(ids[: n * B], dtype=np.int64)).view(B, n).t().contiguous()  # (time, batch)
activation = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "linear": nn.Identity()}[m.dense_activation]

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(c.data.max_vocab, c.embedding.dim)
        self.drop, self.dense_drop = nn.Dropout(m.dropout), nn.Dropout(m.dense_dropout)
        self.lstm = nn.LSTM(c.embedding.dim, m.units, m.layers, dropout=m.dropout if m.layers > 1 else 0.0)
        self.dense = nn.Sequential(nn.Linear(m.units, m.dense_units), activation)
        self.decoder = nn.Linear(m.dense_units, c.data.max_vocab)
        if m.tie_weights:
            self.decoder.weight = self.embedding.weight

    def forward(self, x, hidden):
        out, hidden = self.lstm(self.drop(self.embedding(x)), hidden)
        return self.decoder(self.dense_drop(self.dense(self.drop(out)))), hidden

model = Model()
optimizer = torch.optim.Adam(model.parameters(), lr=c.train.learning_rate)
loss_fn = nn.CrossEntropyLoss()
hidden = tuple(torch.zeros(m.layers, B, m.units) for _ in range(2))
at = 0

def step():
    global hidden, at
    if at + W + 1 > streams.size(0):
        at, hidden = 0, tuple(torch.zeros_like(h) for h in hidden)
    x, y = streams[at: at + W], streams[at + 1: at + W + 1]
    at += W
    hidden = tuple(h.detach() for h in hidden)
    optimizer.zero_grad(set_to_none=True)
    logits, hidden = model(x, hidden)
    loss = loss_fn(logits.view(-1, logits.size(-1)), y.reshape(-1))
    loss.backward()
    for p in model.parameters():
        torch.nn.utils.clip_grad_norm_(p, c.train.clipnorm or float("inf"))
    optimizer.step()
""" + TIMED


FLOOR = r"""
import json, sys
from pathlib import Path
from benchmarks.floor import measure
floor = measure(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
print(json.dumps({key: floor[key] for key in ("windows_per_second", "targets_per_second", "gflops")}))
"""


def torch_importable() -> bool:
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def add_arguments(parser) -> None:
    add_corpus(parser, "the text quality.yaml's shape trains on: War and Peace for the recorded figures; the "
                       "reference model trains on the shipped data/tinyshakespeare.txt")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of all measurements; the best counts")


def run(args) -> tuple[list[dict], dict]:
    steps, corpus = str(args.steps), str(args.corpus.resolve())
    reference, quality = str(ROOT / "configs" / "reference.yaml"), str(ROOT / "configs" / "quality.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        kinds = {
            "ours": lambda: run_child("-c", OURS, reference, f"{tmp}/ours", steps),
            "ours, no rec. drop": lambda: run_child("-c", OURS, reference, f"{tmp}/no_recurrent_dropout", steps,
                                                    "model.recurrent_dropout=0"),
            "ours, Keras step": lambda: run_child("-c", OURS, reference, f"{tmp}/keras_step", steps,
                                                  "train.unrolled=false"),
            "plain Keras": lambda: run_child("-c", PLAIN_KERAS, str(SHIPPED_CORPUS), steps),
            "ours, sequence": lambda: run_child("-c", OURS, reference, f"{tmp}/sequence", steps,
                                                "model.objective=sequence"),
            "floor": lambda: run_child("-c", FLOOR, reference, "3"),
            "quality: ours": lambda: run_child("-c", OURS, quality, f"{tmp}/quality", steps, f"data.corpus={corpus}"),
            "quality: floor": lambda: run_child("-c", FLOOR, quality, "3", corpus),
        }
        if torch_importable():
            kinds["PyTorch nn.LSTM"] = lambda: run_child("-c", TORCH, str(SHIPPED_CORPUS), steps)
            kinds["quality: PyTorch"] = lambda: run_child("-c", TORCH_QUALITY, quality, steps, corpus)
        best: dict[str, dict] = {}
        for round_ in range(args.repeats):
            for name, measure in kinds.items():
                result = measure()
                print(f"  round {round_ + 1}: {name:18} {result['windows_per_second']:8,.0f} windows/s", flush=True)
                if name not in best or result["windows_per_second"] > best[name]["windows_per_second"]:
                    best[name] = result
    figures = reference_table(best, args) + quality_table(best, args)
    return figures, figure("plain Keras", best["plain Keras"]["windows_per_second"], "windows/s")


def reference_table(best: dict[str, dict], args) -> list[dict]:
    """Print the reference model's rows; returns their figures."""
    baseline = best["plain Keras"]["windows_per_second"]
    torch_rate = best.get("PyTorch nn.LSTM", {}).get("windows_per_second")
    print(f"\nreference model, batch 128, best of {args.repeats} ({args.steps} timed steps each):")
    figures = []
    for name in ("ours", "ours, no rec. drop", "ours, Keras step", "plain Keras", "PyTorch nn.LSTM", "ours, sequence",
                 "floor"):
        if name not in best:
            print(f"  {name:18} not measured: torch is not importable here")
            continue
        rate = best[name]["windows_per_second"]
        extra = f", {best[name]['targets_per_second']:,.0f} targets/s" if name == "ours, sequence" else ""
        versus = f"  {rate / torch_rate:5.2f}x PyTorch" if torch_rate else ""
        print(f"  {name:18} {rate:8,.0f} windows/s  {rate / baseline:5.2f}x plain Keras{versus}{extra}")
        if name != "plain Keras":
            figures.append(figure(name, rate, "windows/s", main=name == "ours"))
        if torch_rate and name == "ours":
            figures.append(figure("ours / PyTorch", rate / torch_rate, "x", main=True))
    figures.append(figure("ours, sequence: targets/s", best["ours, sequence"]["targets_per_second"], "targets/s"))
    ours = best["ours"]["windows_per_second"]
    print(f"  ours is {ours / best['floor']['windows_per_second']:.0%} of the floor "
          f"(numpy's 2048 x 2048 product at {best['floor']['gflops']:.0f} GFLOP/s)")
    return figures + [figure("ours / floor", 100 * ours / best["floor"]["windows_per_second"], "%"),
                      figure("numpy 2048 x 2048 matrix product", best["floor"]["gflops"], "GFLOP/s")]


def quality_table(best: dict[str, dict], args) -> list[dict]:
    """Print the rows of quality.yaml's shape; returns their figures."""
    print(f"\nconfigs/quality.yaml's shape, best of {args.repeats} ({args.steps} timed steps each):")
    torch_quality = best.get("quality: PyTorch", {}).get("targets_per_second")
    figures = []
    for name in ("quality: ours", "quality: PyTorch", "quality: floor"):
        if name not in best:
            print(f"  {name:18} not measured: torch is not importable here")
            continue
        rate = best[name]["targets_per_second"]
        versus = f"  {rate / torch_quality:5.2f}x PyTorch" if torch_quality else ""
        print(f"  {name:18} {rate:8,.0f} tokens/s{versus}")
        figures.append(figure(name, rate, "tokens/s", main=name == "quality: ours"))
        if torch_quality and name == "quality: ours":
            figures.append(figure("quality: ours / PyTorch", rate / torch_quality, "x", main=True))
    share = best['quality: ours']['targets_per_second'] / best['quality: floor']['targets_per_second']
    print(f"  ours is {share:.0%} of the floor")
    return figures + [figure("quality: ours / floor", 100 * share, "%")]
