"""Load time and peak memory of load_embedding_matrix against the naive read-everything approach.

Writes a synthetic GloVe-style text file (400,000 words x 100 dimensions by default, about 360 MB) to a
temporary folder, picks a 10,000-word vocabulary (95% of it in the file), then loads the matrix twice,
each time in a fresh Python process so the memory figures start from a clean baseline:

- ours:  lstm_textgen.text.embeddings.load_embedding_matrix (one streaming pass, vocabulary rows only);
- naive: the keras-io pretrained_word_embeddings.py way: every vector into a dict, then the matrix.

    python -m benchmarks embeddings [--words 400000] [--dim 100] [--vocab 10000] [--gzip]

Peak memory is the process's VmHWM (peak resident set) from /proc/self/status, or ru_maxrss elsewhere.
"""
from __future__ import annotations

import gzip
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import memory_kib, run_child
from benchmarks.results import figure

CHILD = """import sys; from pathlib import Path; from benchmarks.embeddings import child
child(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))"""


def write_vectors(path: Path, n_words: int, dim: int, compress: bool) -> None:
    """A GloVe-style file: `word v1 ... vDIM`, values like GloVe's (5 decimals, spread about 0.4)."""
    rng = np.random.default_rng(0)
    pool = [" ".join(f"{x:.5f}" for x in row) for row in rng.normal(0.0, 0.4, (997, dim))]  # rows reused
    # compresslevel 1 writes fast; reading a gzip file costs about the same at any level
    opener = (lambda p, mode, **kw: gzip.open(p, mode, compresslevel=1, **kw)) if compress else open
    with opener(path, "wt", encoding="utf-8") as f:
        for start in range(0, n_words, 10_000):
            f.write("".join(f"word{i} {pool[i % len(pool)]}\n" for i in range(start, min(start + 10_000, n_words))))


def choose_vocabulary(n_words: int, n_vocab: int) -> list[str]:
    """n_vocab words: 95% drawn from the file, the rest absent from it."""
    rng = np.random.default_rng(1)
    in_file = rng.choice(n_words, size=int(n_vocab * 0.95), replace=False)
    return [f"word{i}" for i in in_file] + [f"absent{i}" for i in range(n_vocab - len(in_file))]


def load_ours(path: Path, vocab: list[str], dim: int) -> np.ndarray:
    from lstm_textgen.config import EmbeddingConfig
    from lstm_textgen.text.embeddings import load_embedding_matrix
    from lstm_textgen.text.tokenizer import PAD, UNK
    from lstm_textgen.text.words import WordTokenizer

    tokenizer = WordTokenizer("word", True, [PAD, UNK] + vocab, [0, 0] + [1] * len(vocab))
    train_ids = np.arange(2, tokenizer.vocab_size, dtype=np.int32)
    matrix, coverage = load_embedding_matrix(EmbeddingConfig(path=str(path), dim=dim), tokenizer, train_ids)
    print(coverage["summary"][:120], file=sys.stderr)
    return matrix


def load_naive(path: Path, vocab: list[str], dim: int) -> np.ndarray:
    """keras-io examples/nlp/pretrained_word_embeddings.py, as written there."""
    embeddings_index = {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            word, coefs = line.split(maxsplit=1)
            coefs = np.fromstring(coefs, "f", sep=" ")
            embeddings_index[word] = coefs
    embedding_matrix = np.zeros((len(vocab) + 2, dim), np.float32)
    for i, word in enumerate(vocab, start=2):
        vector = embeddings_index.get(word)
        if vector is not None:
            embedding_matrix[i] = vector
    return embedding_matrix


def child(approach: str, path: Path, vocab_path: Path, dim: int, out: Path) -> None:
    """Run one approach in this (fresh) process and print its figures as JSON."""
    importlib.import_module("lstm_textgen.text.embeddings")  # the same imports for both, before the baseline

    vocab = json.loads(vocab_path.read_text())
    before = memory_kib()
    start = time.perf_counter()
    matrix = (load_ours if approach == "ours" else load_naive)(path, vocab, dim)
    seconds = time.perf_counter() - start
    after = memory_kib()
    np.save(out, matrix)
    print(json.dumps({"approach": approach, "seconds": seconds, "baseline_kib": before["rss"],
                      "peak_kib": after["peak"], "increase_kib": after["peak"] - before["rss"]}))


def add_arguments(parser) -> None:
    parser.add_argument("--words", type=int, default=400_000, help="words in the synthetic file")
    parser.add_argument("--dim", type=int, default=100, help="vector dimension")
    parser.add_argument("--vocab", type=int, default=10_000, help="vocabulary size (without <pad>, <unk>)")
    parser.add_argument("--gzip", action="store_true", help="gzip the file")


def run(args) -> tuple[list[dict], dict]:
    with tempfile.TemporaryDirectory(prefix="bench_embeddings_") as tmp:
        tmp = Path(tmp)
        path = tmp / ("vectors.txt.gz" if args.gzip else "vectors.txt")
        start = time.perf_counter()
        write_vectors(path, args.words, args.dim, args.gzip)
        print(f"wrote {path.name}: {args.words:,} words x {args.dim} dims, {path.stat().st_size / 2**20:,.0f} MiB "
              f"in {time.perf_counter() - start:.1f} s; vocabulary {args.vocab:,} words")
        vocab_path = tmp / "vocab.json"
        vocab_path.write_text(json.dumps(choose_vocabulary(args.words, args.vocab)))
        results = [run_child("-c", CHILD, approach, str(path), str(vocab_path), str(args.dim),
                             str(tmp / f"{approach}.npy"), show_stderr=True) for approach in ("ours", "naive")]
        same = np.array_equal(np.load(tmp / "ours.npy"), np.load(tmp / "naive.npy"))

    print(f"{'approach':<8} {'load s':>8} {'peak RSS MiB':>13} {'above baseline MiB':>19}")
    for r in results:
        print(f"{r['approach']:<8} {r['seconds']:>8.2f} {r['peak_kib'] / 1024:>13.1f} "
              f"{r['increase_kib'] / 1024:>19.1f}")
    print(f"baseline RSS after imports: {results[0]['baseline_kib'] / 1024:.1f} MiB; "
          f"matrices identical: {same}")
    ours, naive = results
    figures = [figure("ours: load", ours["seconds"], "s", main=True),
               figure("ours: peak RSS", ours["peak_kib"] / 1024, "MiB"),
               figure("ours: above baseline", ours["increase_kib"] / 1024, "MiB", main=True),
               figure("naive: load", naive["seconds"], "s", main=True),
               figure("naive: peak RSS", naive["peak_kib"] / 1024, "MiB"),
               figure("RSS after imports", ours["baseline_kib"] / 1024, "MiB"),
               figure("matrices identical", same, "")]
    return figures, figure("naive: above baseline", naive["increase_kib"] / 1024, "MiB")
