"""Why a stateful run's validation perplexity after epoch 1 can be many times its training perplexity.

Issue 16 found 0.1's configs/quality.yaml (1 x 256 LSTM, tied, dropout 0.4, batch 32, stateful) at val ppl
1,974 after epoch 1 on War and Peace, against a training ppl near 270, and normal from epoch 2 on. This
script trains one epoch of that recipe and of today's configs/quality.yaml, then measures the epoch-1 model
with the numpy stepper (lstm_textgen/model/stepper.py, independent of the Keras code that trained it):

  train ppl            the epoch's running training loss (history.csv), weights changing as it goes;
  val ppl (training)   history.csv's val_loss: batch_size streams of the validation split, state carried;
  streams (stepper)    the same streams, recomputed by the stepper: the measurement, checked;
  val (per token)      evaluate's protocol: the split as one stream, state carried throughout;
  text carried / reset every window, on the first 3,000 tokens of the training text and of the validation
                       split: with the state carried along, and zeroed every window_size tokens;
  max |c|              the largest cell-state value over those 3,000 validation tokens, carried.

    python -m benchmarks epoch1 --corpus warpeace_input.txt [--out runs/bench_epoch1]

About 4 minutes on two cores. Run nothing else meanwhile (the tokens/s column is wall clock).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, add_corpus
from benchmarks.results import figure

# configs/quality.yaml as version 0.1 shipped it, spelt as overrides of today's file.
RECIPES = {
    "0.1 quality.yaml (1 x 256)": ["model.layers=1", "model.units=256", "embedding.dim=128", "model.dense_units=128",
                                   "model.dense_activation=relu", "model.dropout=0.4", "model.dense_dropout=0.4",
                                   "train.batch_size=32", "train.learning_rate=3.0e-3", "train.lr_decay=none",
                                   "train.reduce_lr_patience=1"],
    # train.epochs=1 would make the cosine decay follow the steps and fall to its end within the epoch; in a
    # 30-minute run the first epoch (about 5% of the time) trains at nearly the start rate, so: constant.
    "quality.yaml": ["train.lr_decay=none"],
}


def carried_ppl(stepper, ids: np.ndarray, reset_every: int | None = None) -> tuple[float, float]:
    """exp(mean NLL) of ids[1:] over one stream from a zero state (zeroed every reset_every tokens), and the
    largest |c| the first layer reached."""
    from lstm_textgen.model.stepper import softmax

    state, nll, biggest = stepper.zero_state(1), 0.0, 0.0
    for t in range(len(ids) - 1):
        if reset_every and t % reset_every == 0:
            state = stepper.zero_state(1)
        h, state = stepper.advance(state, ids[t: t + 1])
        nll -= math.log(softmax(stepper.head(h))[0, ids[t + 1]])
        biggest = max(biggest, float(np.abs(state[0][1]).max()))
    return math.exp(nll / (len(ids) - 1)), biggest


def streams_ppl(stepper, ids: np.ndarray, batch: int, window: int) -> float:
    """Training's validation protocol: batch equal streams, whole windows, state carried, zero at the start."""
    from lstm_textgen.model.stepper import softmax

    length = len(ids) // batch
    streams = ids[: length * batch].reshape(batch, length)
    state, nll, count = stepper.zero_state(batch), 0.0, 0
    for t in range((length - 1) // window * window):
        h, state = stepper.advance(state, streams[:, t])
        nll -= np.log(softmax(stepper.head(h))[np.arange(batch), streams[:, t + 1]]).sum()
        count += batch
    return math.exp(nll / count)


def add_arguments(parser) -> None:
    add_corpus(parser, "the text to train and validate on: War and Peace for the recorded figures")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_epoch1", help="folder for the runs")


def run(args) -> tuple[list[dict], dict]:
    from lstm_textgen.config import load_config
    from lstm_textgen.generation.evaluate import score_ids
    from lstm_textgen.model.stepper import Stepper
    from lstm_textgen.run.rundir import load_run
    from lstm_textgen.training.train import train

    rows = []
    for name, overrides in RECIPES.items():
        run_dir = args.out / name.split(" ")[0].replace(".", "_")
        config = load_config(ROOT / "configs" / "quality.yaml", [
            *overrides, f"data.corpus={args.corpus.resolve()}", f"train.run_dir={run_dir}", "train.epochs=1",
            "train.sample_every=null"])
        train(config, mode="restart")
        run = load_run(run_dir)
        history = next(csv.DictReader(open(run_dir / "history.csv")))
        val, train_ids = np.load(run_dir / "tokens" / "val.npy"), np.load(run_dir / "tokens" / "train.npy")
        stepper, window = Stepper(run.weights), config.data.window_size
        batch = run.config.train.batch_size  # the streams training validated with (auto's number, as the run kept it)
        figures = {"train ppl": math.exp(float(history["loss"])), "val ppl (training)": float(history["val_perplexity"]),
                   "streams (stepper)": streams_ppl(stepper, val, batch, window),
                   "val (per token)": score_ids(run, val)["perplexity"]}
        for part, ids in (("train text", train_ids[:3000]), ("val text", val[:3000])):
            figures[f"{part} carried"], biggest = carried_ppl(stepper, ids)
            figures[f"{part} reset every window"], _ = carried_ppl(stepper, ids, window)
        figures["max |c| (val, carried)"] = biggest
        figures["tokens/s"] = float(history["tokens_per_second"])
        rows.append((name, figures))

    print(f"\nafter epoch 1 on {args.corpus.name} (perplexities; the stepper recomputes each from model.keras)")
    for key in rows[0][1]:
        print(f"{key:<32}" + "".join(f"{figures[key]:>30,.2f}" for _, figures in rows))
    print(f"{'':<32}" + "".join(f"{name:>30}" for name, _ in rows))
    (old, first), units = rows[0], {"max |c| (val, carried)": "", "tokens/s": "tokens/s"}
    recorded = [figure(f"{name}: {key}", value, units.get(key, "ppl"), main=key == "val ppl (training)")
                for name, found in rows for key, value in found.items()]
    recorded.append(figure(f"{old}: val / train ppl", first["val ppl (training)"] / first["train ppl"], "x",
                           main=True))
    return recorded, figure(f"{old}: train ppl", first["train ppl"], "ppl")
