"""Shared fixtures: every test works in its own tmp_path; tiny corpora and runs are made here."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TINY_TEXT = ("the cat sat on the mat . the dog sat on the log .\n"
             "a cat and a dog , the best of friends , sat by the fire .\n") * 30


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Keep every write (runs/, caches) inside the test's own folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path


def fit_tokenizer(texts, level: str = "word", lowercase: bool = True, max_vocab=None, min_count: int = 1):
    """A Tokenizer fitted on whole texts in memory: the oracle the streaming tokenization is checked against."""
    from collections import Counter

    from lstm_textgen.text.words import WordTokenizer

    probe = WordTokenizer(level, lowercase, [])
    return WordTokenizer.from_counts(Counter(t for text in texts for t in probe.split(text)), level, lowercase,
                                 max_vocab, min_count)


TINY_SETTINGS = ["train.epochs=1", "train.steps_per_epoch=3", "train.batch_size=8", "model.units=8",
                 "model.dense_units=8", "embedding.dim=8", "data.window_size=5"]


def train_tiny(corpus: Path, run_dir: Path, *extra: str) -> Path:
    """Train a tiny real run through the library and return its directory."""
    from lstm_textgen.config import load_config
    from lstm_textgen.training.train import train

    return train(load_config(None, [f"data.corpus={corpus}", f"train.run_dir={run_dir}", *TINY_SETTINGS, *extra]))


def train_tiny_stopped_at(monkeypatch, global_step: int, corpus: Path, run_dir: Path, *extra: str) -> None:
    """train_tiny, stopped as Ctrl-C stops it (a resumable state saved, then Stopped) after global_step steps."""
    from lstm_textgen.training.callbacks import Backup
    from lstm_textgen.training.resume import Stopped

    original = Backup.on_train_batch_end

    def stop_there(self, batch, logs=None):
        self.session.stop_requested = self.session.state.progress.global_step == global_step
        original(self, batch, logs)

    with monkeypatch.context() as patched:
        patched.setattr(Backup, "on_train_batch_end", stop_there)
        with pytest.raises(Stopped):
            train_tiny(corpus, run_dir, *extra)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One tiny trained run shared by the tests that only read it (copy it before changing it)."""
    folder = tmp_path_factory.mktemp("tiny_run")
    corpus = folder / "corpus.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    return train_tiny(corpus, folder / "run", "train.epochs=2")


BPE_TEXT = TINY_TEXT + "the café sat by the naïve dog 🐕 , 世界 .\n" * 10
BPE_SETTINGS = ["data.level=bpe", "data.max_vocab=300", "data.lowercase=false"]


@pytest.fixture(scope="session")
def bpe_run(tmp_path_factory) -> Path:
    """A tiny trained bpe run (accents, an emoji, CJK in its text) shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("bpe_run")
    corpus = folder / "corpus.txt"
    corpus.write_text(BPE_TEXT, encoding="utf-8")
    return train_tiny(corpus, folder / "run", "train.epochs=2", "train.learning_rate=0.02", *BPE_SETTINGS)


@pytest.fixture(scope="session")
def level_runs(tiny_run, bpe_run, tmp_path_factory) -> dict[str, Path]:
    """A tiny trained run at every level (word and bpe are the shared ones), for the tests that only read them."""
    folder = tmp_path_factory.mktemp("level_runs")
    corpus = folder / "corpus.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    return {"word": tiny_run, "bpe": bpe_run,
            **{level: train_tiny(corpus, folder / level, f"data.level={level}") for level in ("whitespace", "char")}}


@pytest.fixture(scope="session")
def bidirectional_run(tmp_path_factory) -> Path:
    """A tiny trained run of a bidirectional LSTM (the `last` objective), shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("bidirectional_run")
    corpus = folder / "corpus.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    return train_tiny(corpus, folder / "run", "model.bidirectional=true", "model.objective=last")


@pytest.fixture(scope="session")
def run(tiny_run):
    """The tiny run, loaded (for the tests that only read it)."""
    from lstm_textgen.run.rundir import load_run

    return load_run(tiny_run)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def two_runs(tiny_run, tmp_path):
    """runs/a (the tiny run, 2 epochs) and runs/group/b (a copy with a made-up third epoch)."""
    a, b = tmp_path / "runs" / "a", tmp_path / "runs" / "group" / "b"
    shutil.copytree(tiny_run, a)
    shutil.copytree(tiny_run, b)
    with open(b / "history.csv", "a") as f:
        f.write("3,1.5,0.5,1.0,0.6,2.718281828459045,0.1,1000.0,200.0,0.001\n")
    return a, b
