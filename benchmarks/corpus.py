"""Tokenizing a big corpus: time and peak memory of the streaming path against reading it all at once.

Builds a corpus of about --mb megabytes (default 100) in a temporary folder by repeating the texts given as
--corpus (the recorded figures repeat nietzsche.txt, tinyshakespeare.txt and warpeace_input.txt, in that order),
then runs each step in a fresh Python process so every memory figure starts clean:

- ours:  lstm_textgen.text.tokens.tokenize_corpus (count, then encode, file by file and chunk by chunk);
- naive: read the whole text, split it into a list of token strings, count them, encode the list;
- train: one short training run on that corpus (train.steps_per_epoch small, a 1% validation tail),
  for its peak memory, tokenizing included;
- cached: a second run in the same run directory (one more epoch: a resume), which reads the token
  cache the first one wrote instead of tokenizing again.

    python -m benchmarks corpus --corpus FILE [FILE ...] [--mb 100] [--steps 20] [--skip-train] [--level bpe]

--level bpe measures the bpe level instead of word level (ours and the training runs; naive stays the word
level's): learning the merges from the training split, streamed, then encoding, with data.max_vocab --vocab.

Peak memory is the process's VmHWM (peak resident set) from /proc/self/status; RssFile at the end is
its file-backed part (about 480 MiB of it are TensorFlow's own libraries). The target is at most 1.2 GB
(1,200,000,000 bytes) for both training runs. Times depend on the machine's load: compare the ratio of
ours to naive, measured in the same run.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import add_corpus, run_child
from benchmarks.results import figure

TARGET_BYTES = 1_200_000_000  # the 1.2 GB peak RSS for training on a 100 MB corpus

CHILD = r"""
import json, sys, time
from pathlib import Path

kind, corpus, level, vocab = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
vocab = None if vocab == "null" else int(vocab)
start = time.perf_counter()
if kind == "ours":
    from lstm_textgen.config import DataConfig
    from lstm_textgen.text.tokens import tokenize_corpus
    tok, train, val, _ = tokenize_corpus(DataConfig(corpus=corpus, level=level, max_vocab=vocab))
    n = len(train) + len(val)
elif kind == "naive":
    from collections import Counter
    import numpy as np
    from lstm_textgen.text.words import WordTokenizer
    text = Path(corpus).read_text(encoding="utf-8")
    probe = WordTokenizer("word", True, [])
    tokens = list(probe.split(text))
    tok = WordTokenizer.from_counts(Counter(tokens), "word", True, None)
    ids = np.array([tok.index.get(t, 1) for t in tokens], np.int32)
    n = len(ids)
else:
    from lstm_textgen.training import train as training
    from lstm_textgen.config import load_config
    steps, epochs = sys.argv[5], 1 if kind == "train" else 2
    if kind == "cached":  # the second run must not tokenize
        def refuse(config, **kwargs):
            raise SystemExit("the cached run tokenized the corpus again")
        training.tokenize_corpus = refuse
    training.train(load_config(None, [f"data.corpus={corpus}", f"train.run_dir={Path(corpus).parent / 'run'}",
                                      f"train.epochs={epochs}", f"train.steps_per_epoch={steps}",
                                      "train.sample_every=null", "data.val_fraction=0.01",  # a short val pass
                                      f"data.level={level}", f"data.max_vocab={sys.argv[4]}"]))
    n = 0
seconds = time.perf_counter() - start
from benchmarks.common import memory_kib  # after the work: it cannot raise the peak
memory = memory_kib()
print(json.dumps({"seconds": seconds, "peak_mib": memory["peak"] / 1024, "tokens": n,
                  "file_mib": memory["file"] / 1024}))
"""


def build_corpus(path: Path, megabytes: int, sources: list[Path]) -> int:
    """Repeat the texts of sources until the file holds about `megabytes` MB; returns its size in bytes."""
    texts = [p.read_text(encoding="utf-8") for p in sources]
    target = megabytes * 1_000_000
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < target:
            for text in texts:
                written += f.write(text)
    return path.stat().st_size


def run_step(kind: str, corpus: Path, level: str, vocab: str, *extra: str) -> dict:
    return run_child("-c", CHILD, kind, str(corpus), level, vocab, *extra)


def add_arguments(parser) -> None:
    add_corpus(parser, "texts repeated up to --mb, e.g. nietzsche.txt tinyshakespeare.txt warpeace_input.txt",
               several=True)
    parser.add_argument("--mb", type=int, default=100, help="corpus size in MB")
    parser.add_argument("--steps", type=int, default=20, help="train.steps_per_epoch of the training run")
    parser.add_argument("--skip-train", action="store_true", help="only tokenize")
    parser.add_argument("--level", choices=("word", "bpe"), default="word", help="the level measured")
    parser.add_argument("--vocab", default=None, help="data.max_vocab (default: null for word, 10000 for bpe)")


def run(args) -> tuple[list[dict], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        t = time.perf_counter()
        size = build_corpus(corpus, args.mb, args.corpus)
        print(f"corpus: {size / 1e6:.1f} MB built in {time.perf_counter() - t:.1f} s")
        vocab = args.vocab or ("10000" if args.level == "bpe" else "null")
        print(f"level {args.level}, data.max_vocab {vocab}")
        figures, steps = [figure("corpus built", size, "bytes")], {}
        for kind in ("ours", "naive"):
            r = steps[kind] = run_step(kind, corpus, args.level if kind == "ours" else "word",
                                       vocab if kind == "ours" else "null")
            print(f"{kind:6} tokenize: {r['seconds']:6.1f} s, peak RSS {r['peak_mib']:7.0f} MiB, "
                  f"{r['tokens']:,} tokens")
            figures += [figure(f"{kind} tokenize", r["seconds"], "s", main=kind == "ours"),
                        figure(f"{kind} tokenize peak RSS", r["peak_mib"], "MiB", main=True)]
        ratio = steps["ours"]["seconds"] / steps["naive"]["seconds"]
        print(f"ours / naive tokenizing time: {ratio:.2f}")
        figures.append(figure("ours / naive tokenizing time", ratio, "x", main=True))
        if not args.skip_train:
            figures += train_peaks(corpus, args.level, vocab, args.steps)
    return figures, figure("naive tokenize", steps["naive"]["seconds"], "s")


def train_peaks(corpus: Path, level: str, vocab: str, steps: int) -> list[dict]:
    """Peak memory of a short training run on corpus (tokenizing included) and of a second one (token cache)."""
    peaks, figures = [], []
    for kind, what in (("train", "first run, tokenizing included"), ("cached", "second run, token cache")):
        r = run_step(kind, corpus, level, vocab, str(steps))
        peaks.append(r["peak_mib"] * 2**20)
        print(f"{kind:6} ({steps} steps, {what}): {r['seconds']:6.1f} s, "
              f"peak RSS {r['peak_mib']:7.0f} MiB = {r['peak_mib'] * 2**20 / 1e9:.2f} GB "
              f"(file-backed at the end: {r['file_mib']:.0f} MiB, TensorFlow's libraries and the "
              "token memmap's pages)")
        figures += [figure(f"{kind} run ({what}) peak RSS", r["peak_mib"] * 2**20 / 1e9, "GB"),
                    figure(f"{kind} run seconds", r["seconds"], "s")]
    met = max(peaks) <= TARGET_BYTES
    print(f"target (peak RSS at most {TARGET_BYTES / 1e9:.1f} GB in both runs): "
          f"{'met' if met else 'NOT met'}, highest {max(peaks) / 1e9:.2f} GB")
    return figures + [figure("training peak RSS, highest", max(peaks) / 1e9, "GB", main=True)]
