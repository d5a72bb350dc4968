"""Validation perplexity for the same time budget: configs/reference.yaml, configs/quality.yaml and, when
torch is importable, the PyTorch word_language_model recipe.

    python -m benchmarks quality --corpus warpeace_input.txt [--minutes 30] [--out runs/bench_quality]
                                 [--only quality ...] [--set model.weight_drop=0.5 ...] [--seeds 3]

--seeds N trains the quality row N times (train.seed 42, 43, ...) and scores it by the mean of their per-token
figures, each seed's and the spread printed beside it.

--only runs the named rows (reference, quality, torch) and keeps the others from --out's results.json, of an
earlier run with the same --minutes and corpus, if there is one: a changed config costs 30 minutes, not 90.

Each lstm-textgen config trains in a subprocess with --set train.max_minutes=MINUTES (and train.epochs
high enough that the budget, or early stopping, ends it) and --restart. Two figures per run:
  - val ppl (training): metrics.json's best val perplexity, each run's own protocol (reference: the
    token after each 20-token window; quality: every position of 35-token windows);
  - val ppl (per token): `evaluate`'s protocol on the validation tail (tokens/val.npy): every token
    after the first predicted once, with the context each run trained with. Both configs tokenize
    alike (word level, 10,000 words), so this column compares them on the very same tokens.
The PyTorch recipe (2 x 200 LSTM, dropout 0.2, SGD lr 20 divided by 4 on a plateau, clip 0.25, bptt 35,
batch 20, tied weights off) trains on the quality run's token ids for the same minutes and is scored
with its state carried across the whole validation tail, as the per-token column.
Timings are wall clock on whatever machine runs it; run nothing else meanwhile.
"""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, add_corpus, add_settings
from benchmarks.results import figure

CONFIGS = ("reference", "quality")


def train_config(name: str, corpus: Path, run_dir: Path, minutes: float, settings: list[str] = ()) -> float:
    """Train configs/NAME.yaml in a subprocess, with --set SETTINGS after the script's own; returns its wall
    time in seconds."""
    args = [sys.executable, "-m", "lstm_textgen", "train", str(corpus), "--config", str(ROOT / "configs" / f"{name}.yaml"),
            "--run", str(run_dir), "--restart", "--set", f"train.max_minutes={minutes}",
            "--set", "train.epochs=100000", "--set", "train.sample_every=null"]
    args += [arg for setting in settings for arg in ("--set", setting)]
    print(f"[{name}] {' '.join(args[1:])}", flush=True)
    start = time.perf_counter()
    subprocess.run(args, check=True, cwd=ROOT)
    return time.perf_counter() - start


def score_run(run_dir: Path) -> dict:
    """The training's own best val perplexity, and evaluate's per-token figure on the validation tail."""
    from lstm_textgen.run.rundir import load_run
    from lstm_textgen.generation.evaluate import score_ids

    run = load_run(run_dir)
    metrics = run.metrics()
    val_ids = np.load(run_dir / "tokens" / "val.npy")
    report = score_ids(run, val_ids)
    return {"val_ppl_training": metrics.get("best_val_perplexity"), "val_ppl_per_token": report["perplexity"],
            "epochs": metrics.get("epochs"), "tokens_seen": metrics.get("tokens_seen"),
            "parameters": metrics.get("parameters"), "val_tokens": report["tokens"]}


def torch_word_lm(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int, minutes: float,
                  seed: int = 42) -> dict:
    """pytorch/examples word_language_model main.py defaults (LSTM, 2 x 200, dropout 0.2, lr 20, clip 0.25,
    bptt 35, batch 20), trained for `minutes` of wall time (the validation passes included)."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    bptt, batch_size, clip, emsize, nhid, nlayers, dropout = 35, 20, 0.25, 200, 200, 2, 0.2

    class RNNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(vocab_size, emsize)
            self.rnn = nn.LSTM(emsize, nhid, nlayers, dropout=dropout)
            self.decoder = nn.Linear(nhid, vocab_size)
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

        def forward(self, x, hidden):  # x: (time, batch)
            output, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
            return self.decoder(self.drop(output)), hidden

        def init_hidden(self, bsz):
            weight = next(self.parameters())
            return (weight.new_zeros(nlayers, bsz, nhid), weight.new_zeros(nlayers, bsz, nhid))

    def batchify(ids: np.ndarray, bsz: int):  # (time, batch): column b is stream b, as main.py cuts it
        data = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        n = data.size(0) // bsz
        return data[: n * bsz].view(bsz, -1).t().contiguous()

    def detach(hidden):
        return tuple(h.detach() for h in hidden)

    def evaluate(ids: np.ndarray) -> float:
        """exp(mean NLL) of every token after the first, one stream, state carried throughout."""
        model.eval()
        data = batchify(ids, 1)
        total, count, hidden = 0.0, 0, model.init_hidden(1)
        with torch.no_grad():
            for i in range(0, data.size(0) - 1, bptt):
                seq_len = min(bptt, data.size(0) - 1 - i)
                x, y = data[i: i + seq_len], data[i + 1: i + 1 + seq_len].reshape(-1)
                output, hidden = model(x, hidden)
                total += criterion(output.view(-1, vocab_size), y).item() * len(y)
                count += len(y)
        return math.exp(total / count)

    model, criterion = RNNModel(), nn.CrossEntropyLoss()
    train_data = batchify(train_ids, batch_size)
    lr, best, epochs, tokens = 20.0, None, 0, 0
    deadline = time.perf_counter() + minutes * 60.0
    while time.perf_counter() < deadline:
        model.train()
        hidden = model.init_hidden(batch_size)
        for i in range(0, train_data.size(0) - 1, bptt):
            seq_len = min(bptt, train_data.size(0) - 1 - i)
            x, y = train_data[i: i + seq_len], train_data[i + 1: i + 1 + seq_len].reshape(-1)
            hidden = detach(hidden)
            model.zero_grad()
            output, hidden = model(x, hidden)
            loss = criterion(output.view(-1, vocab_size), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            tokens += len(y)
            if time.perf_counter() >= deadline:  # the budget ends the epoch early, as max_minutes does
                break
        epochs += 1
        val = evaluate(val_ids)
        if best is None or val < best:
            best = val
        else:
            lr /= 4.0  # main.py: anneal the learning rate when validation does not improve
    return {"val_ppl_training": best, "val_ppl_per_token": best, "epochs": epochs, "tokens_seen": tokens,
            "parameters": sum(p.numel() for p in model.parameters()), "val_tokens": int(len(val_ids))}


def add_arguments(parser) -> None:
    add_corpus(parser, "English prose of a few MB to train and validate on: War and Peace for the recorded figures")
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per run (train.max_minutes)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_quality", help="folder for the runs")
    parser.add_argument("--only", nargs="+", choices=[*CONFIGS, "torch"],
                        help="rerun only these rows; the others come from --out/results.json")
    add_settings(parser, "a setting for the quality run (repeatable), after configs/quality.yaml's: to try a "
                         "change before it goes into the file")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train the quality row this many times (train.seed 42, 43, ...): its figure is their "
                             "mean, printed with each seed's and the spread")


def earlier_rows(args) -> dict[str, dict]:
    """With --only, the rows of --out/results.json (of the same minutes and corpus), if there is one."""
    if not (args.only and (args.out / "results.json").is_file()):
        return {}
    earlier = json.loads((args.out / "results.json").read_text())
    corpus = str(args.corpus.resolve())
    if earlier.pop("minutes") != args.minutes or earlier.pop("corpus", corpus) != corpus:
        raise SystemExit(f"Error: {args.out / 'results.json'} is for other minutes or another corpus: "
                         "run without --only")
    return earlier


def run(args) -> tuple[list[dict], dict | None]:
    results = earlier_rows(args)
    for name in CONFIGS:
        if args.only and name not in args.only:
            continue
        seeds = range(42, 42 + (args.seeds if name == "quality" else 1))
        rows = [train_and_score(name, args, seed) for seed in seeds]
        results[name] = {**rows[0], "val_ppl_per_token": float(np.mean([r["val_ppl_per_token"] for r in rows]))}
        if len(rows) > 1:
            results[name]["seeds"] = {seed: r["val_ppl_per_token"] for seed, r in zip(seeds, rows)}
    if args.only and "torch" not in args.only:
        pass  # the PyTorch row, if any, is the earlier run's
    elif importlib.util.find_spec("torch") is None:  # not a dependency: the row is skipped without it
        print("torch is not importable: the PyTorch word-LM row is skipped", flush=True)
    else:
        from lstm_textgen.run.rundir import load_run
        tokens = (args.out / "quality").resolve() / "tokens"  # the same ids and vocabulary as the quality run
        start = time.perf_counter()
        results["pytorch word LM"] = torch_word_lm(np.load(tokens / "train.npy"), np.load(tokens / "val.npy"),
                                                   load_run(args.out / "quality").tokenizer.vocab_size, args.minutes)
        results["pytorch word LM"]["wall_minutes"] = (time.perf_counter() - start) / 60.0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"minutes": args.minutes, "corpus": str(args.corpus.resolve()),
                                                         **results}, indent=2) + "\n")
    return report(results, args)


def train_and_score(name: str, args, seed: int) -> dict:
    """configs/NAME.yaml trained into --out/NAME (--out/NAME-seedN for another seed than 42) and scored."""
    run_dir = (args.out / (name if seed == 42 else f"{name}-seed{seed}")).resolve()
    settings = [*(args.settings if name == "quality" else ()), *([f"train.seed={seed}"] if seed != 42 else [])]
    wall = train_config(name, args.corpus.resolve(), run_dir, args.minutes, settings)
    return {**score_run(run_dir), "wall_minutes": wall / 60.0}


def report(results: dict[str, dict], args) -> tuple[list[dict], dict | None]:
    """Print the table and the comparisons; returns the figures and the reference row's (the baseline)."""
    print(f"\nvalidation perplexity after {args.minutes:g} minutes of training on {args.corpus.name}")
    print(f"{'run':<18}{'val ppl (training)':>20}{'val ppl (per token)':>21}{'epochs':>8}{'tokens seen':>13}"
          f"{'parameters':>12}{'wall min':>10}")
    figures = []
    for name in [*CONFIGS, "pytorch word LM"]:
        if name not in results:
            continue
        r = results[name]
        print(f"{name:<18}{r['val_ppl_training']:>20.2f}{r['val_ppl_per_token']:>21.2f}{r['epochs']:>8}"
              f"{r['tokens_seen']:>13,}{r['parameters']:>12,}{r['wall_minutes']:>10.1f}")
        if r.get("seeds"):
            seeds = {int(k): v for k, v in r["seeds"].items()}
            spread = max(seeds.values()) - min(seeds.values())
            print(f"{'':<18}per token by seed: {', '.join(f'{k}: {v:.2f}' for k, v in seeds.items())}; mean "
                  f"{r['val_ppl_per_token']:.2f}, spread {spread:.2f} (the training column is seed 42's)")
            figures += [figure(f"{name}: val ppl (per token), seed {k}", v, "ppl") for k, v in seeds.items()]
            figures.append(figure(f"{name}: seed spread (max - min)", spread, "ppl"))
        figures += [figure(f"{name}: val ppl (training)", r["val_ppl_training"], "ppl"),
                    figure(f"{name}: val ppl (per token)", r["val_ppl_per_token"], "ppl", main=name != "reference"),
                    figure(f"{name}: epochs", r["epochs"], "epochs"),
                    figure(f"{name}: tokens seen", r["tokens_seen"], "tokens"),
                    figure(f"{name}: parameters", r["parameters"], "weights"),
                    figure(f"{name}: wall time", r["wall_minutes"], "minutes")]
    per_token = {name: r["val_ppl_per_token"] for name, r in results.items()}
    if {"reference", "quality"} <= per_token.keys():
        lower = 100 * (1 - per_token['quality'] / per_token['reference'])
        print(f"\nquality vs reference, per token: {lower:.1f}% lower (target: >= 30%)")
        figures.append(figure("quality vs reference, per token lower", lower, "%", main=True))
    if {"quality", "pytorch word LM"} <= per_token.keys():
        ratio = per_token['quality'] / per_token['pytorch word LM']
        print(f"quality vs the PyTorch word LM, per token: {ratio:.3f}x its perplexity (target: <= 0.9x)")
        figures.append(figure("quality / PyTorch word LM, per token", ratio, "x", main=True))
    if "reference" not in per_token:
        return figures, None
    return figures, figure("reference: val ppl (per token)", per_token["reference"], "ppl")
