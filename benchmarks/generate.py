"""Generation speed on the reference-sized model: tokens/s, batching, start-up latency, Keras baseline.

    python -m benchmarks generate [--tokens 2000] [--batch 32] [--baseline-tokens 50] [--first-token-only]
                                  [--corpus data/tinyshakespeare.txt]

The same model with a bpe tokenizer (learned on --corpus, the shipped Tiny Shakespeare by default, up to the
same vocabulary) gives the bpe level's time to first token beside the word level's (the target: within 0.1 s
of it); --first-token-only measures just those two.

Builds an untrained model of the reference size (vocabulary 10,000, Embedding 100, LSTM 64, Dense 64,
objective last) in a temporary run directory; random weights cost the same to run as trained ones.
Prints one table. Timings are wall clock on whatever machine runs it: compare rows, not machines.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SEED, SHIPPED_CORPUS, VOCAB, add_corpus, cli_command, make_reference_run, median_wall
from benchmarks.results import figure


def make_bpe_run(word_run: Path, run_dir: Path, corpus: Path) -> None:
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
    text = corpus.read_text(encoding="utf-8")
    tokenizer = BPETokenizer.learn(pieces(text), VOCAB, lowercase=True)
    tokenizer.save(run_dir / TOKENIZER, __version__)
    save_model(build_model(config.model, tokenizer.vocab_size, config.embedding.dim), run_dir / MODEL)


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


def add_arguments(parser) -> None:
    parser.add_argument("--tokens", type=int, default=2000, help="tokens per single-stream measurement")
    parser.add_argument("--batch", type=int, default=32, help="streams in the batched measurement")
    parser.add_argument("--batch-tokens", type=int, default=200, help="tokens per stream when batched")
    parser.add_argument("--baseline-tokens", type=int, default=50, help="tokens for the Keras baseline")
    parser.add_argument("--repeats", type=int, default=5, help="subprocess runs per latency median")
    parser.add_argument("--first-token-only", action="store_true", help="only the word and bpe first-token rows")
    add_corpus(parser, "the text the bpe tokenizer is learned on", default=SHIPPED_CORPUS)


def run(args) -> tuple[list[dict], dict | None]:
    from lstm_textgen.generation.sample import Generator
    from lstm_textgen.run.rundir import load_run

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "reference"
        make_reference_run(run_dir)
        run = load_run(run_dir)
        generator = Generator(run.tokenizer, run.weights)
        rows, figures = first_token(run_dir, Path(tmp) / "bpe", args.corpus, args.repeats)
        if args.first_token_only:
            print_rows(rows)
            return figures, None
        tps = streams(generator, args, rows, figures)

        help_latency = median_wall(cli_command() + ["--help"], args.repeats)
        rows.append(("`lstm-textgen --help`", f"{help_latency:.2f} s"))
        figures.append(figure("`lstm-textgen --help`", help_latency, "s"))

        baseline = keras_baseline(run, args.baseline_tokens)
        rows.append(("baseline: Keras model.predict per token", f"{baseline:,.1f} tokens/s"))
        rows.append(("single stream / baseline", f"{tps / baseline:,.0f}x"))
        figures.append(figure("single stream / baseline", tps / baseline, "x", main=True))
    print_rows(rows)
    return figures, figure("Keras model.predict per token", baseline, "tokens/s")


def streams(generator, args, rows: list, figures: list) -> float:
    """Single streams (three sampling settings) and a batch of them, into rows and figures; returns the
    single stream's tokens/s at temperature 1."""
    from lstm_textgen.config import GenerateConfig as Settings

    rates = {}
    for name, settings in (("single stream, temperature 1", Settings(length=args.tokens, temperature=1.0)),
                           ("single stream, top-k 40 + top-p 0.9",
                            Settings(length=args.tokens, temperature=1.0, top_k=40, top_p=0.9)),
                           ("single stream, greedy", Settings(length=args.tokens, greedy=True))):
        rates[name] = tokens_per_second(generator, [SEED], settings)
        rows.append((name, f"{rates[name]:,.0f} tokens/s"))
        figures.append(figure(name, rates[name], "tokens/s", main=name.endswith("temperature 1")))

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
    figures += [figure(f"batch of {args.batch} streams", batched, "tokens/s", main=True),
                figure(f"{args.batch} x {args.batch_tokens} tokens: {args.batch} single runs", one_by_one, "s"),
                figure(f"{args.batch} x {args.batch_tokens} tokens: one batch", as_batch, "s")]
    return rates["single stream, temperature 1"]


def first_token(word_run: Path, bpe_run: Path, corpus: Path, repeats: int) -> tuple[list, list[dict]]:
    """`generate -n 1`, process start to exit, on the word run and on the same model with a bpe tokenizer:
    the table's rows and the figures."""
    make_bpe_run(word_run, bpe_run, corpus)
    seconds = {}
    for name, run_dir in (("word", word_run), ("bpe", bpe_run)):
        seconds[name] = median_wall(cli_command() + ["generate", "--run", str(run_dir), "--seed", SEED, "-n", "1",
                                                     "--random-seed", "0"], repeats)
    rows = [("first token: `generate -n 1`, process start to exit", f"{seconds['word']:.2f} s"),
            ("the same at the bpe level (target: within 0.1 s)",
             f"{seconds['bpe']:.2f} s ({seconds['bpe'] - seconds['word']:+.2f} s)")]
    return rows, [figure("first token, word level", seconds["word"], "s", main=True),
                  figure("first token, bpe level", seconds["bpe"], "s")]


def print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    load = ", load average {:.1f}".format(os.getloadavg()[0]) if hasattr(os, "getloadavg") else ""
    print(f"lstm-textgen generation, reference-sized model (vocab {VOCAB:,}, Embedding 100, LSTM 64, Dense 64), "
          f"{os.cpu_count()} CPUs{load}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
