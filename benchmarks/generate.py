"""Generation speed on the reference-sized model: tokens/s, batching, start-up latency, Keras baseline.

    python benchmarks/generate.py [--tokens 2000] [--batch 32] [--baseline-tokens 50] [--first-token-only]

The same model with a bpe tokenizer (learned on ../shared/data/tinyshakespeare.txt up to the same vocabulary)
gives the bpe level's time to first token beside the word level's (the target: within 0.1 s of it);
--first-token-only measures just those two.

Builds an untrained model of the reference size (vocabulary 10,000, Embedding 100, LSTM 64, Dense 64,
objective last) in a temporary run directory; random weights cost the same to run as trained ones.
Prints one table. Timings are wall clock on whatever machine runs it: compare rows, not machines.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VOCAB, SEED = 10_000, "w10 w20 w30 w40"


def make_reference_run(run_dir: Path) -> None:
    """config.yaml, tokenizer.json and an untrained model.keras of the reference size, with the metrics.json and
    history.csv of one finished epoch (serve, like every command, refuses a run that has a model without them)."""
    import math

    from lstm_textgen import __version__
    from lstm_textgen.run.files import (CONFIG, HISTORY, METRICS, MODEL, TOKENIZER, prepare_run_dir, save_json,
                                        save_model)
    from lstm_textgen.training.callbacks import HISTORY_COLUMNS
    from lstm_textgen.run.stamp import save_config
    from lstm_textgen.config import load_config
    from lstm_textgen.model.stack import build_model
    from lstm_textgen.text.tokenizer import PAD, UNK
    from lstm_textgen.text.words import WordTokenizer

    config = load_config(ROOT / "configs" / "reference.yaml", [f"train.run_dir={run_dir}"])
    assert (config.model.rnn, config.model.units, config.model.dense_units, config.embedding.dim,
            config.model.objective) == ("lstm", 64, 64, 100, "last"), "configs/reference.yaml changed"
    prepare_run_dir(run_dir, new=True)
    save_config(run_dir / CONFIG, config)
    vocab = [PAD, UNK] + [f"w{i}" for i in range(2, VOCAB)]
    WordTokenizer("word", True, vocab, [0, 0] + [1] * (VOCAB - 2)).save(run_dir / TOKENIZER, __version__)
    model = build_model(config.model, VOCAB, config.embedding.dim)
    save_model(model, run_dir / MODEL)
    untrained = {"epoch": 1, "loss": math.log(VOCAB), "val_loss": math.log(VOCAB), "val_perplexity": float(VOCAB)}
    (run_dir / HISTORY).write_text(",".join(HISTORY_COLUMNS) + "\n"
                                   + ",".join(str(untrained.get(c, 0)) for c in HISTORY_COLUMNS) + "\n")
    save_json(run_dir / METRICS, {"epochs": 1, "best_epoch": 1, "best_val_perplexity": float(VOCAB),
                                  "tokens_per_second": 0.0})


def make_bpe_run(word_run: Path, run_dir: Path) -> None:
    """The reference run's config and model shape with a bpe tokenizer of (up to) the same vocabulary."""

    from lstm_textgen import __version__
    from lstm_textgen.text.bpe import BPETokenizer, pieces
    from lstm_textgen.config import load_config
    from lstm_textgen.model.stack import build_model
    from lstm_textgen.run.files import CONFIG, MODEL, TOKENIZER, prepare_run_dir, save_model
    from lstm_textgen.run.stamp import save_config

    config = load_config(word_run / "config.yaml", ["data.level=bpe", f"train.run_dir={run_dir}"])
    prepare_run_dir(run_dir, new=True)
    save_config(run_dir / CONFIG, config)
    text = (ROOT.parent / "shared" / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    tokenizer = BPETokenizer.learn(pieces(text), VOCAB, lowercase=True)
    tokenizer.save(run_dir / TOKENIZER, __version__)
    save_model(build_model(config.model, tokenizer.vocab_size, config.embedding.dim), run_dir / MODEL)


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("lstm-textgen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lstm_textgen"]


def median_wall(command: list[str], repeats: int) -> float:
    """Median seconds from process start to exit (for `-n 1`, an upper bound on the first token)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return statistics.median(times)


def tokens_per_second(generator, seeds: list[str], settings, repeats: int = 5) -> float:
    """Best of `repeats` (other work on the machine only ever slows a run down): generated tokens (all
    rows) per second, after the model is loaded."""
    best = 0.0
    for r in range(repeats):
        start = time.perf_counter()
        samples = generator.sample(seeds, settings, list(range(r, r + len(seeds))))
        elapsed = time.perf_counter() - start
        best = max(best, sum(len(s.tokens) for s in samples) / elapsed)
    return best


def keras_baseline(run, tokens: int) -> float:
    """The old way: model.predict on the whole window (up to window_size tokens) for every new token."""
    model, window = run.model, run.config.data.window_size
    ids = run.tokenizer.encode(SEED)
    rng = np.random.default_rng(0)
    model.predict(np.array([ids[-window:]]), verbose=0)  # warm-up: the first call builds the graph
    start = time.perf_counter()
    for _ in range(tokens):
        probs = model.predict(np.array([ids[-window:]]), verbose=0)[0].astype(np.float64)
        probs[:2] = 0.0
        ids.append(int(rng.choice(len(probs), p=probs / probs.sum())))
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="tokens per single-stream measurement")
    parser.add_argument("--batch", type=int, default=32, help="streams in the batched measurement")
    parser.add_argument("--batch-tokens", type=int, default=200, help="tokens per stream when batched")
    parser.add_argument("--baseline-tokens", type=int, default=50, help="tokens for the Keras baseline")
    parser.add_argument("--repeats", type=int, default=5, help="subprocess runs per latency median")
    parser.add_argument("--first-token-only", action="store_true", help="only the word and bpe first-token rows")
    args = parser.parse_args()

    from lstm_textgen.run.rundir import load_run
    from lstm_textgen.config import GenerateConfig as Settings
    from lstm_textgen.generation.sample import Generator

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "reference"
        make_reference_run(run_dir)
        run = load_run(run_dir)
        generator = Generator(run.tokenizer, run.weights)
        rows = first_token_rows(run_dir, Path(tmp) / "bpe", args.repeats)
        if args.first_token_only:
            return print_rows(rows)

        single = Settings(length=args.tokens, temperature=1.0)
        tps = tokens_per_second(generator, [SEED], single)
        rows.append(("single stream, temperature 1", f"{tps:,.0f} tokens/s"))
        narrowed = Settings(length=args.tokens, temperature=1.0, top_k=40, top_p=0.9)
        tps_topk = tokens_per_second(generator, [SEED], narrowed)
        rows.append(("single stream, top-k 40 + top-p 0.9", f"{tps_topk:,.0f} tokens/s"))
        tps_greedy = tokens_per_second(generator, [SEED], Settings(length=args.tokens, greedy=True))
        rows.append(("single stream, greedy", f"{tps_greedy:,.0f} tokens/s"))

        per_stream = Settings(length=args.batch_tokens, temperature=1.0)
        batched = tokens_per_second(generator, [SEED] * args.batch, per_stream)
        rows.append((f"batch of {args.batch} streams", f"{batched:,.0f} tokens/s"))
        start = time.perf_counter()
        for i in range(args.batch):
            generator.sample([SEED], per_stream, [i])
        one_by_one = time.perf_counter() - start
        start = time.perf_counter()
        generator.sample([SEED] * args.batch, per_stream, list(range(args.batch)))
        as_batch = time.perf_counter() - start
        rows.append((f"{args.batch} x {args.batch_tokens} tokens: {args.batch} single runs",
                     f"{one_by_one:.2f} s"))
        rows.append((f"{args.batch} x {args.batch_tokens} tokens: one batch",
                     f"{as_batch:.2f} s ({one_by_one / as_batch:.1f}x faster)"))

        help_latency = median_wall(cli_command() + ["--help"], args.repeats)
        rows.append(("`lstm-textgen --help`", f"{help_latency:.2f} s"))

        baseline = keras_baseline(run, args.baseline_tokens)
        rows.append(("baseline: Keras model.predict per token", f"{baseline:,.1f} tokens/s"))
        rows.append(("single stream / baseline", f"{tps / baseline:,.0f}x"))
    print_rows(rows)


def first_token_rows(word_run: Path, bpe_run: Path, repeats: int) -> list[tuple[str, str]]:
    """`generate -n 1`, process start to exit, on the word run and on the same model with a bpe tokenizer."""
    make_bpe_run(word_run, bpe_run)
    seconds = {}
    for name, run_dir in (("word", word_run), ("bpe", bpe_run)):
        seconds[name] = median_wall(cli_command() + ["generate", "--run", str(run_dir), "--seed", SEED, "-n", "1",
                                                     "--random-seed", "0"], repeats)
    return [("first token: `generate -n 1`, process start to exit", f"{seconds['word']:.2f} s"),
            ("the same at the bpe level (target: within 0.1 s)",
             f"{seconds['bpe']:.2f} s ({seconds['bpe'] - seconds['word']:+.2f} s)")]


def print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    load = ", load average {:.1f}".format(os.getloadavg()[0]) if hasattr(os, "getloadavg") else ""
    print(f"lstm-textgen generation, reference-sized model (vocab {VOCAB:,}, Embedding 100, LSTM 64, Dense 64), "
          f"{os.cpu_count()} CPUs{load}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
