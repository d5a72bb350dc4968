"""Tokenizing a big corpus: time and peak memory of the streaming path against reading it all at once.

Builds a corpus of about --mb megabytes (default 100) in a temporary folder by repeating the texts of
../shared/data, then runs each step in a fresh Python process so every memory figure starts clean:

- ours:  lstm_textgen.text.tokens.tokenize_corpus (count, then encode, file by file and chunk by chunk);
- naive: read the whole text, split it into a list of token strings, count them, encode the list;
- train: one short training run on that corpus (train.steps_per_epoch small, a 1% validation tail),
  for its peak memory, tokenizing included;
- cached: a second run in the same run directory (one more epoch: a resume), which reads the token
  cache the first one wrote instead of tokenizing again.

    .venv/bin/python benchmarks/corpus.py [--mb 100] [--steps 20] [--skip-train] [--level bpe]

--level bpe measures the bpe level instead of word level (ours and the training runs; naive stays the word
level's): learning the merges from the training split, streamed, then encoding, with data.max_vocab --vocab.

Peak memory is the process's VmHWM (peak resident set) from /proc/self/status; RssFile at the end is
its file-backed part (about 480 MiB of it are TensorFlow's own libraries). The target is at most 1.2 GB
(1,200,000,000 bytes) for both training runs. Times depend on the machine's load: compare the ratio of
ours to naive, measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT.parent / "shared" / "data"
TARGET_BYTES = 1_200_000_000  # the 1.2 GB peak RSS for training on a 100 MB corpus

CHILD = r"""
import json, sys, time
from pathlib import Path

def status_mib(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

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
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mib": status_mib("VmHWM"), "tokens": n,
                  "file_mib": status_mib("RssFile")}))
"""


def build_corpus(path: Path, megabytes: int) -> int:
    """Repeat the shipped texts until the file holds about `megabytes` MB; returns its size in bytes."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(SOURCES.glob("*.txt")) if "glove" not in p.name]
    target = megabytes * 1_000_000
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < target:
            for text in texts:
                written += f.write(text)
    return path.stat().st_size


def run(kind: str, corpus: Path, level: str, vocab: str, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(corpus), level, vocab, *extra], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="corpus size in MB")
    parser.add_argument("--steps", type=int, default=20, help="train.steps_per_epoch of the training run")
    parser.add_argument("--skip-train", action="store_true", help="only tokenize")
    parser.add_argument("--level", choices=("word", "bpe"), default="word", help="the level measured")
    parser.add_argument("--vocab", default=None, help="data.max_vocab (default: null for word, 10000 for bpe)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        t = time.perf_counter()
        size = build_corpus(corpus, args.mb)
        print(f"corpus: {size / 1e6:.1f} MB built in {time.perf_counter() - t:.1f} s")
        seconds = {}
        vocab = args.vocab or ("10000" if args.level == "bpe" else "null")
        print(f"level {args.level}, data.max_vocab {vocab}")
        for kind in ("ours", "naive"):
            r = run(kind, corpus, args.level if kind == "ours" else "word", vocab if kind == "ours" else "null")
            seconds[kind] = r["seconds"]
            print(f"{kind:6} tokenize: {r['seconds']:6.1f} s, peak RSS {r['peak_mib']:7.0f} MiB, "
                  f"{r['tokens']:,} tokens")
        print(f"ours / naive tokenizing time: {seconds['ours'] / seconds['naive']:.2f}")
        if not args.skip_train:
            peaks = []
            for kind, what in (("train", "first run, tokenizing included"), ("cached", "second run, token cache")):
                r = run(kind, corpus, args.level, vocab, str(args.steps))
                peaks.append(r["peak_mib"] * 2**20)
                print(f"{kind:6} ({args.steps} steps, {what}): {r['seconds']:6.1f} s, "
                      f"peak RSS {r['peak_mib']:7.0f} MiB = {r['peak_mib'] * 2**20 / 1e9:.2f} GB "
                      f"(file-backed at the end: {r['file_mib']:.0f} MiB, TensorFlow's libraries and the "
                      "token memmap's pages)")
            met = max(peaks) <= TARGET_BYTES
            print(f"target (peak RSS at most {TARGET_BYTES / 1e9:.1f} GB in both runs): "
                  f"{'met' if met else 'NOT met'}, highest {max(peaks) / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
