"""`lstm-textgen inspect` on a long text: 10,000 tokens of a 2 x 256 model read and the page written, beside
`lstm-textgen evaluate` of the same text by the same run, each as the command a person runs (its own process,
start-up included).

    python -m benchmarks inspect [--tokens 10000] [--units 256] [--layers 2] [--repeats 3]

Builds an untrained model of the reference vocabulary (10,000 words) with --layers LSTMs --units wide in a
temporary run directory (random weights cost the same to read as trained ones) and a text of --tokens of its
words. Target (issue 38): at most 5 s for the page, on two cores. Timings are wall clock: compare rows.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import VOCAB, cli_command, make_reference_run, median_wall
from benchmarks.results import figure

TARGET_SECONDS = 5.0


def add_arguments(parser) -> None:
    parser.add_argument("--tokens", type=int, default=10_000, help="tokens in the text read")
    parser.add_argument("--units", type=int, default=256, help="units per LSTM layer")
    parser.add_argument("--layers", type=int, default=2, help="LSTM layers")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command; the median is kept")


def run(args) -> tuple[list[dict], dict | None]:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, text, page = Path(tmp) / "model", Path(tmp) / "text.txt", Path(tmp) / "inside.html"
        make_reference_run(run_dir, args.units, args.layers)
        words = np.random.default_rng(0).integers(2, VOCAB, args.tokens)
        text.write_text(" ".join(f"w{i}" for i in words), encoding="utf-8")
        inspect = median_wall(cli_command() + ["inspect", "--run", str(run_dir), str(text), "-o", str(page),
                                               "--force"], args.repeats)
        size = page.stat().st_size
        evaluate = median_wall(cli_command() + ["evaluate", "--run", str(run_dir), str(text)], args.repeats)
    print(f"{args.tokens:,} tokens, {args.layers} x {args.units} LSTM, vocabulary {VOCAB:,}")
    print(f"  lstm-textgen inspect ... -o page.html   {inspect:6.2f} s  (page {size / 1e6:.1f} MB)")
    print(f"  lstm-textgen evaluate (same text)       {evaluate:6.2f} s")
    print(f"  inspect / evaluate                      {inspect / evaluate:6.2f}x")
    print(f"target: the page in at most {TARGET_SECONDS:g} s: {inspect:.2f} s "
          f"({'met' if inspect <= TARGET_SECONDS else 'NOT met'})")
    figures = [figure("inspect, page written", inspect, "s", main=True), figure("page size", size / 1e6, "MB"),
               figure("evaluate, same text", evaluate, "s"),
               figure("inspect / evaluate", inspect / evaluate, "x", main=True)]
    return figures, figure("evaluate, same text", evaluate, "s")
