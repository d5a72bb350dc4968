"""Helpers the test files share: the command line invoked, its one error line checked, a folder's files hashed,
a training killed at the right moment, a figure's lines read back, the real server started on a free port,
sampling on fake logits, and tiny corpora and vector files for the embedding tests."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.config import GenerateConfig
from lstm_textgen.generation.decode import draw_rows
from lstm_textgen.generation.rules import History, apply_rules, greedy, weights
from lstm_textgen.serve.server import Server, bind, load_served
from lstm_textgen.text.words import WordTokenizer

from conftest import TINY_SETTINGS, fit_tokenizer


def invoke(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def tiny_train_args(corpus, run_dir) -> list:
    """The train command line for a tiny run of corpus into run_dir."""
    return ["train", corpus, "--run", run_dir, *[a for s in TINY_SETTINGS for a in ("--set", s)]]


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def check_one_error(result, fragment: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no uncaught exception
    lines = result.output.splitlines()
    errors = [line for line in lines if "Error:" in line]
    assert len(errors) == 1 and errors[0].startswith("Error: "), result.output  # one, at the start of its line
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output and "\r" not in result.output


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (links as links) -> a hash of what it holds."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            files[str(path.relative_to(root))] = "link to " + os.readlink(path)
        elif path.is_file():
            files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def read_state(run):
    try:
        return json.loads((run / "checkpoints" / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def wait_for(condition, proc, timeout=180.0):
    end = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"training ended before the moment to kill it: {proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("timed out waiting for the moment to kill")
        time.sleep(0.002)


@dataclass
class Curve:
    """One line as drawn: which run, which metric, and its points."""
    run: str
    metric: str  # "loss", "val_loss" or "val_perplexity"
    epochs: list[float]
    values: list[float]


def drawn_lines(fig, labels: list[str]) -> list[Curve]:
    """The metric lines of a draw_curves figure (their gid names the metric), read back in run order."""
    curves = []
    for ax in fig.axes:
        lines = [line for line in ax.get_lines() if line.get_gid()]
        per_run = len(lines) // len(labels)
        curves += [Curve(labels[i // per_run], line.get_gid(), [float(x) for x in line.get_xdata()],
                         [float(y) for y in line.get_ydata()]) for i, line in enumerate(lines)]
    return curves


def generate_cli(run_dir, prompt: str, *args: str) -> list[str]:
    """The texts `lstm-textgen generate --jsonl` makes from run_dir (what the server's answers are held to)."""
    result = CliRunner().invoke(cli, ["generate", "--run", str(run_dir), "--seed", prompt, "--jsonl", *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line)["text"] for line in result.stdout.splitlines()]


@contextmanager
def running_server(run_dirs, **options):
    """Server on 127.0.0.1 and a port the system picks, in a thread; yields (base URL, {name: Served})."""
    served = load_served([str(d) for d in run_dirs])
    ready = threading.Event()
    server = Server(served, on_ready=lambda url: ready.set(), **options)
    thread = threading.Thread(target=server.serve_on, args=(bind("127.0.0.1", 0),), daemon=True)
    thread.start()
    assert ready.wait(30), "the server did not start"
    try:
        yield server.url, served
    finally:
        server.stop()
        thread.join(30)


# Sampling on fake logits (generation/test_rules.py, test_sample.py)


def Settings(**values) -> GenerateConfig:
    """Generation settings with the plain softmax (temperature 1) unless told otherwise."""
    return GenerateConfig(**{"temperature": 1.0, **values})


def sample_next(logits, settings, rng, history=()) -> int:
    """One token drawn from a row of logits, as the generator draws each row."""
    row = np.array(logits, dtype=np.float32)[None]
    return int(draw_rows(row, settings, [rng], [History(history, settings.no_repeat_ngram_size)])[0])


def distribution(logits, settings, history=()) -> np.ndarray:
    """The probabilities a row is drawn from under settings (0 = cannot be drawn)."""
    row = apply_rules(np.array(logits, dtype=np.float32)[None], settings,
                      [History(history, settings.no_repeat_ngram_size)])
    if greedy(settings):
        return np.eye(row.shape[1])[row.argmax()]
    probs = weights(row)[0].astype(np.float64)
    return probs / probs.sum()


VOCAB = 12


def fake_logits(seed=0, size=VOCAB) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 2.0, size).astype(np.float32)


def draws(logits, settings, n=4000, history=(), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([sample_next(logits, settings, rng, history) for _ in range(n)])


# Tiny corpora and vector files (text/test_embeddings.py, test_vectors.py)

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "under", "a", "mat", "log", "big", "small", "red", "blue"]


NOT_IN_FILE = {"mat", "blue"}  # vocabulary words the test files leave out, with "." and "\n"


EXTRA = ["zebra", "violin", "quartz"]  # file words that are not in the vocabulary


SUMMARY_RE = re.compile(r"^embeddings: [\d,]+ of [\d,]+ vocabulary words found \(\d+\.\d%\), "
                        r"covering \d+\.\d% of corpus tokens")


def corpus_text(seed: int = 0, sentences: int = 60) -> str:
    rng = random.Random(seed)
    return "".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 8))) + " .\n"
                   for _ in range(sentences))


def random_vectors(words: list[str], dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """float32 vectors whose repr() reads back exactly, so any correct reader must match bit for bit."""
    rng = np.random.default_rng(seed)
    return {w: rng.normal(0.0, 0.5, dim).astype(np.float32) for w in words}


def write_vectors(path, vectors: dict[str, np.ndarray], fmt: str, compress: bool = False) -> None:
    """fmt: glove (no header), vec (header `N DIM`, fastText's trailing space), bin (word2vec.c binary,
    a newline after each vector) or gensim-bin (gensim's binary, no newline)."""
    dim = len(next(iter(vectors.values())))
    if fmt in ("bin", "gensim-bin"):
        end = b"\n" if fmt == "bin" else b""
        data = f"{len(vectors)} {dim}\n".encode() + b"".join(
            w.encode() + b" " + v.astype("<f4").tobytes() + end for w, v in vectors.items())
    else:
        lines = [f"{w} " + " ".join(repr(float(x)) for x in v) + (" " if fmt == "vec" else "")
                 for w, v in vectors.items()]
        header = [f"{len(vectors)} {dim}"] if fmt == "vec" else []
        data = "\n".join(header + lines).encode() + b"\n"
    path.write_bytes(gzip.compress(data) if compress else data)


def fit(text: str, lowercase: bool = True) -> tuple[WordTokenizer, np.ndarray]:
    tokenizer = fit_tokenizer([text], "word", lowercase)
    return tokenizer, tokenizer.encode_array(text)


def expected_rows(tokenizer: WordTokenizer, vectors: dict[str, np.ndarray], dim: int) -> np.ndarray:
    rows = np.zeros((tokenizer.vocab_size, dim), np.float32)
    for i, word in enumerate(tokenizer.vocab[2:], start=2):
        if word in vectors:
            rows[i] = vectors[word]
    return rows
