"""Character level against char-rnn: held-out bits per character after the same minutes of training,
configs/char.yaml beside karpathy/char-rnn's well-known setting for good results, written here in PyTorch.

    python -m benchmarks charrnn --corpus warpeace_input.txt [--minutes 30] [--out runs/bench_charrnn]
                                 [--only char charrnn] [--set model.units=512 ...]

configs/char.yaml trains in a subprocess for --minutes (train.max_minutes) and is scored with `evaluate`'s
protocol on its validation tail (tokens/val.npy, the corpus's last 10%): every character after the first
predicted once, the state carried across the whole text. The char-rnn recipe trains on the same run's
character ids (the same vocabulary and split) for the same minutes of wall time, validation passes included,
and is scored the same way. Figure: bits per predicted character, log2 of the per-character perplexity.

The char-rnn recipe (karpathy/char-rnn train.lua, with its README's advice for good results): one-hot
characters into 2 LSTM layers of 512 units, dropout 0.5 between layers and before the output, sequences of
100 characters from 50 streams with the state carried from batch to batch, RMSprop (alpha 0.95) at 2e-3,
the rate times 0.97 each epoch after the 10th, gradients clipped at 5, weights uniform in +-0.08; the best
validation figure of its epochs is kept. Timings are wall clock; run nothing else meanwhile.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, add_corpus, add_settings
from benchmarks.quality import train_config
from benchmarks.results import figure

TARGET = 0.95  # ours at most this share of the recipe's bits per character (issue 40)


def add_arguments(parser) -> None:
    add_corpus(parser, "English prose of a few MB: War and Peace for the recorded figures")
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per run")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_charrnn", help="folder for the runs")
    parser.add_argument("--only", nargs="+", choices=["char", "charrnn"],
                        help="rerun only these rows; the other comes from --out/results.json")
    add_settings(parser, "a setting for the char.yaml run (repeatable), after the file's")


def char_rnn(train_ids: np.ndarray, val_ids: np.ndarray, vocab: int, minutes: float, seed: int = 123) -> dict:
    """The char-rnn recipe above, trained for `minutes` of wall time; bits per character of its best epoch."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count() or 1)
    size, layers, dropout, seq, streams, clip = 512, 2, 0.5, 100, 50, 5.0

    class CharRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(vocab, size, layers, dropout=dropout)
            self.drop, self.out = nn.Dropout(dropout), nn.Linear(size, vocab)
            for p in self.parameters():
                nn.init.uniform_(p, -0.08, 0.08)

        def forward(self, x, state):  # x: (time, batch) ids
            output, state = self.rnn(F.one_hot(x, vocab).float(), state)
            return self.out(self.drop(output)), state

    def streams_of(ids: np.ndarray, n: int):  # (time, n): column b is stream b
        data = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        return data[: len(data) // n * n].view(n, -1).t().contiguous()

    def bits(ids: np.ndarray) -> float:
        model.eval()
        data, state, total, count = streams_of(ids, 1), None, 0.0, 0
        with torch.no_grad():
            for i in range(0, data.size(0) - 1, seq):
                n = min(seq, data.size(0) - 1 - i)
                logits, state = model(data[i:i + n], state)
                total += F.cross_entropy(logits.view(-1, vocab), data[i + 1:i + 1 + n].reshape(-1),
                                         reduction="sum").item()
                count += n
        return total / count / math.log(2)

    model = CharRNN()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=2e-3, alpha=0.95, eps=1e-8)
    data, best, epochs, seen = streams_of(train_ids, streams), None, 0, 0
    deadline = time.perf_counter() + minutes * 60.0
    while time.perf_counter() < deadline:
        model.train()
        state = None
        for i in range(0, data.size(0) - 1 - seq, seq):
            x, y = data[i:i + seq], data[i + 1:i + 1 + seq]
            state = None if state is None else tuple(s.detach() for s in state)
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.view(-1, vocab), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_value_(model.parameters(), clip)  # char-rnn clamps each gradient element
            optimizer.step()
            seen += y.numel()
            if time.perf_counter() >= deadline:
                break
        epochs += 1
        if epochs > 10:
            for group in optimizer.param_groups:
                group["lr"] *= 0.97
        score = bits(val_ids)
        best = score if best is None else min(best, score)
        print(f"[charrnn] epoch {epochs}: {score:.4f} bits per character, {seen:,} characters seen", flush=True)
    return {"bits_per_char": best, "epochs": epochs, "chars_seen": seen,
            "parameters": sum(p.numel() for p in model.parameters()), "val_chars": int(len(val_ids))}


def score_char(run_dir: Path) -> dict:
    from lstm_textgen.generation.evaluate import score_ids
    from lstm_textgen.run.rundir import load_run

    run = load_run(run_dir)
    val_ids = np.load(run_dir / "tokens" / "val.npy")
    report, metrics = score_ids(run, val_ids), run.metrics()
    return {"bits_per_char": math.log2(report["perplexity"]), "epochs": metrics.get("epochs"),
            "chars_seen": metrics.get("tokens_seen"), "parameters": metrics.get("parameters"),
            "val_chars": int(len(val_ids))}


def run(args) -> tuple[list[dict], dict | None]:
    results = {}
    earlier = args.out / "results.json"
    if args.only and earlier.is_file():
        results = {k: v for k, v in json.loads(earlier.read_text()).items() if k in ("char", "charrnn")}
    if not args.only or "char" in args.only:
        start = time.perf_counter()
        train_config("char", args.corpus.resolve(), (args.out / "char").resolve(), args.minutes, args.settings)
        results["char"] = {**score_char((args.out / "char").resolve()), "wall_minutes": (time.perf_counter() - start) / 60}
    if (not args.only or "charrnn" in args.only) and importlib.util.find_spec("torch") is not None:
        from lstm_textgen.run.rundir import load_run

        tokens = (args.out / "char").resolve() / "tokens"
        start = time.perf_counter()
        results["charrnn"] = char_rnn(np.load(tokens / "train.npy"), np.load(tokens / "val.npy"),
                                      load_run(args.out / "char").tokenizer.vocab_size, args.minutes)
        results["charrnn"]["wall_minutes"] = (time.perf_counter() - start) / 60
    elif "charrnn" not in results:
        print("torch is not importable: the char-rnn row is skipped", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    earlier.write_text(json.dumps(results, indent=2) + "\n")
    return report(results, args)


def report(results: dict, args) -> tuple[list[dict], dict | None]:
    print(f"\nheld-out bits per character after {args.minutes:g} minutes on {args.corpus.name}")
    print(f"{'run':<22}{'bits/char':>10}{'epochs':>8}{'chars seen':>14}{'parameters':>12}{'wall min':>10}")
    figures = []
    for name, label in (("char", "configs/char.yaml"), ("charrnn", "char-rnn (PyTorch)")):
        if name in results:
            r = results[name]
            print(f"{label:<22}{r['bits_per_char']:>10.4f}{r['epochs']:>8}{r['chars_seen']:>14,}"
                  f"{r['parameters']:>12,}{r['wall_minutes']:>10.1f}")
            figures += [figure(f"{label}: bits per character", r["bits_per_char"], "bits", main=True),
                        figure(f"{label}: epochs", r["epochs"], "epochs"),
                        figure(f"{label}: characters seen", r["chars_seen"], "chars"),
                        figure(f"{label}: wall time", r["wall_minutes"], "minutes")]
    if {"char", "charrnn"} <= results.keys():
        ratio = results["char"]["bits_per_char"] / results["charrnn"]["bits_per_char"]
        print(f"char.yaml vs char-rnn: {ratio:.3f}x its bits per character (target: <= {TARGET}x): "
              f"{'met' if ratio <= TARGET else 'NOT met'}")
        figures.append(figure("char.yaml / char-rnn, bits per character", ratio, "x", main=True))
        return figures, figure("char-rnn (PyTorch): bits per character", results["charrnn"]["bits_per_char"], "bits")
    return figures, None
