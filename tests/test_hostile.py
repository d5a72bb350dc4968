"""Hostile input: every bad input ends in exactly one `Error:` line, a non-zero exit, no traceback,
and a run directory the next command can still use."""
from __future__ import annotations

import errno
import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from lstm_textgen.cli import cli

from conftest import TINY_SETTINGS, TINY_TEXT
from helpers import check_one_error, snapshot

TINY = [a for s in TINY_SETTINGS for a in ("--set", s)]


@dataclass
class Case:
    name: str
    args: Callable[["World"], list]  # the world -> the command line
    fragment: str  # what the Error: line must say
    target: Callable[["World"], Path] | None = None  # the one run directory the command may write (a train)


class World:
    """A folder as a person's disk looks around a command: a finished run, a good corpus, a folder of their
    own files (some with the names a run uses), and text that must never be touched."""

    def __init__(self, root: Path, trained: Path):
        self.root, self.run, self.new_run = root, root / "good_run", root / "new_run"
        shutil.copytree(trained, self.run)
        self.corpus = corpus(root, TINY_TEXT, "good.txt")
        self.user = root / "my_folder"
        self.user.mkdir()
        for name, text in (("config.yaml", "my: settings\n"), ("model.keras", "not a model"), ("history.csv", "a,b\n"),
                           (".notes.personal.txt", "private"), ("notes.txt", "hello"), (".model.keras.abcd1234.keras", "x")):
            (self.user / name).write_text(text)
        self.books = root / "books"
        self.books.mkdir()
        corpus(self.books, TINY_TEXT, "a.txt")
        self.runs = root / "old_runs"  # a folder of runs (each has samples.txt, which is text)
        shutil.copytree(trained, self.runs / "first")

    def broken(self, damage: Callable[[Path], None]) -> Path:
        """A copy of the finished run with something done to it (the latest one is self.damaged)."""
        self.damaged = self.root / f"damaged_run_{len(list(self.root.glob('damaged_run_*')))}"
        shutil.copytree(self.run, self.damaged, symlinks=True)
        damage(self.damaged)
        return self.damaged


def corpus(folder: Path, data: bytes | str, name: str = "c.txt") -> Path:
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def train(w: World, corpus_path, *extra) -> list:
    return ["train", corpus_path, "--run", w.new_run, *TINY, *extra]


def vectors(folder: Path, lines: list[str], gz: bool = False) -> Path:
    path = folder / ("v.txt.gz" if gz else "v.txt")
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


GOOD_VECTORS = [f"{w} 0.1 0.2 0.3" for w in ("the", "cat", "dog", "sat", "on", "mat")]
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


def gen(run, *extra) -> list:
    return ["generate", "--run", run, "--seed", "the cat", "-n", "5", *extra]


def without_checkpoints(run: Path) -> None:
    shutil.rmtree(run / "checkpoints")


def symlink_away(name: str):
    def damage(run: Path) -> None:
        (run / name).unlink()
        (run / name).symlink_to(run / "gone")
    return damage


def half_trained(run: Path) -> None:
    """As if training were killed before its first epoch ended: no model, no history, a state mid-epoch."""
    for name in ("model.keras", "history.csv", "metrics.json", "curves.png", "samples.txt"):
        (run / name).unlink(missing_ok=True)
    for checkpoint in (run / "checkpoints").glob("epoch_*.keras"):
        checkpoint.unlink()


CASES = [
    # corpora
    Case("empty corpus", lambda w: train(w, corpus(w.root, b"")), "holds no text"),
    Case("whitespace-only corpus", lambda w: train(w, corpus(w.root, " \n\t \n")), "holds no text"),
    Case("binary file", lambda w: train(w, corpus(w.root, bytes(range(256)) * 4)), "looks binary"),
    Case("invalid UTF-8", lambda w: train(w, corpus(w.root, b"good text \xc3\x28 here" * 9)), "not UTF-8"),
    Case("UTF-16 text is named as such", lambda w: train(w, corpus(w.root, TINY_TEXT.encode("utf-16"))),
         "is UTF-16 text, not UTF-8"),
    Case("shorter than one window", lambda w: train(w, corpus(w.root, "one two three")), "too short"),
    Case("folder without text files", lambda w: train(w, (w.root / "f").mkdir() or w.root / "f"), "has no text files"),
    Case("glob matching nothing", lambda w: train(w, str(w.root / "*.nothing")), "matches no files"),
    Case("missing corpus", lambda w: train(w, w.root / "absent.txt"), "does not exist"),
    Case("vocabulary that keeps no word", lambda w: train(w, w.corpus, "--set", "data.min_count=100000"),
         "data.min_count=100000 keeps no token"),
    Case("missing validation corpus", lambda w: train(w, w.corpus, "--set", f"data.val_corpus={w.root / 'v.txt'}"),
         "does not exist"),
    Case("empty validation corpus", lambda w: train(w, w.corpus, "--set",
                                                    f"data.val_corpus={corpus(w.root, ' ', 'v.txt')}"), "holds no text"),
    Case("validation corpus shorter than one window", lambda w: train(
        w, w.corpus, "--set", f"data.val_corpus={corpus(w.root, 'the cat', 'v.txt')}"),
         "has 2 tokens, fewer than one window of 6; give a longer data.val_corpus"),
    Case("validation corpus glob that would read the run's samples", lambda w: train(
        w, w.corpus, "--set", f"data.val_corpus={w.root}/*/*.txt"),
         "would become part of the validation corpus (data.val_corpus)"),
    Case("too short a validation tail for the streams names val_fraction", lambda w: train(
        w, w.corpus, "--set", "train.stateful=true", "--set", "train.batch_size=60"), "raise --set data.val_fraction"),
    # configs
    Case("YAML that does not parse", lambda w: train(w, w.corpus, "--config", corpus(w.root, "a: [1,", "c.yaml")),
         "not valid YAML"),
    Case("config that is a list", lambda w: train(w, w.corpus, "--config", corpus(w.root, "- 1\n- 2\n", "c.yaml")),
         "must be a mapping"),
    Case("config whose aliases expand to millions of values", lambda w: train(
        w, w.corpus, "--config", corpus(w.root, ALIAS_BOMB, "bomb.yaml")), "expands to over 100,000 values"),
    Case("config of many megabytes", lambda w: train(w, w.corpus, "--config", corpus(
        w.root, "# " + "x" * (2 << 20) + "\n", "big.yaml")), "too big for a config file"),
    Case("config file missing", lambda w: train(w, w.corpus, "--config", w.root / "none.yaml"), "does not exist"),
    Case("config is a folder", lambda w: train(w, w.corpus, "--config", w.root), "is a directory"),
    Case("unknown key", lambda w: train(w, w.corpus, "--set", "model.colour=red"), "unknown config key"),
    Case("misspelt key", lambda w: train(w, w.corpus, "--set", "trian.epochs=2"), "did you mean 'train.epochs'"),
    Case("a very long unknown key is not echoed whole", lambda w: train(w, w.corpus, "--set", "x" * 5000 + "=1"),
         "unknown config key 'xxxx"),
    Case("wrong type", lambda w: train(w, w.corpus, "--set", "train.batch_size=big"), "must be int"),
    Case("negative size", lambda w: train(w, w.corpus, "--set", "model.units=-8"), "model.units must be >= 1"),
    Case("zero size", lambda w: train(w, w.corpus, "--set", "train.batch_size=0"), "train.batch_size must be >= 1"),
    Case("absurd size", lambda w: train(w, w.corpus, "--set", "model.layers=1000"), "model.layers must be <= 64"),
    Case("NaN learning rate", lambda w: train(w, w.corpus, "--set", "train.learning_rate=.nan"),
         "train.learning_rate must be a finite number"),
    Case("infinite clipnorm", lambda w: train(w, w.corpus, "--set", "train.clipnorm=.inf"),
         "train.clipnorm must be a finite number"),
    Case("NaN dropout", lambda w: train(w, w.corpus, "--set", "model.dropout=nan"), "model.dropout must be a finite"),
    Case("max_vocab below 3", lambda w: train(w, w.corpus, "--set", "data.max_vocab=2"), "data.max_vocab"),
    Case("tie_weights with dense_units != embedding.dim", lambda w: train(
        w, w.corpus, "--set", "model.tie_weights=true", "--set", "model.dense_units=6"), "model.tie_weights needs"),
    Case("stateful with objective last", lambda w: train(
        w, w.corpus, "--set", "train.stateful=true", "--set", "model.objective=last"), "train.stateful needs"),
    Case("max_minutes zero", lambda w: train(w, w.corpus, "--set", "train.max_minutes=0"), "train.max_minutes"),
    Case("--set without =", lambda w: train(w, w.corpus, "--set", "model.units"), "--set expects KEY=VALUE"),
    Case("a model far beyond the machine's memory", lambda w: train(
        w, w.corpus, "--set", "model.units=60000", "--set", "model.dense_units=60000", "--set", "model.layers=8"),
        "more than the"),
    Case("a key given twice in a config file", lambda w: train(
        w, w.corpus, "--config", corpus(w.root, "model:\n  units: 8\ntrain:\n  epochs: 1\nmodel:\n  units: 9\n", "c.yaml")),
        "gives model twice (lines 1 and 5)"),
    Case("a key given twice deep in a config file", lambda w: train(
        w, w.corpus, "--config", corpus(w.root, "model:\n  units: 8\n  dropout: 0.1\n  units: 9\n", "c.yaml")),
        "gives model.units twice (lines 2 and 4)"),
    Case("the validation file is the corpus", lambda w: train(w, w.corpus, "--set", f"data.val_corpus={w.corpus}"),
         "is not held out: 1 of its files"),
    Case("the validation file is inside the corpus folder", lambda w: train(
        w, w.books, "--set", f"data.val_corpus={w.books / 'a.txt'}"), "is not held out"),
    Case("a run folder given as the corpus", lambda w: train(w, w.run), "reads the run directory"),
    Case("a folder holding runs given as the corpus", lambda w: train(w, w.runs), "reads the run directory"),
    Case("a corpus glob that reaches into runs", lambda w: train(w, str(w.runs / "**" / "*.txt")),
         "reads the run directory"),
    Case("new text for a finished run", lambda w: [
        "train", corpus(w.root, TINY_TEXT + "a zebra appears .\n", "new.txt"), "--run", w.run, *TINY],
        "has finished training on", lambda w: w.run),
    Case("--resume with --restart", lambda w: ["train", w.corpus, "--run", w.run, "--resume", "--restart", *TINY],
         "--resume and --restart cannot be used together", lambda w: w.run),
    # vector files
    Case("missing vector file", lambda w: train(w, w.corpus, "--set", f"embedding.path={w.root / 'no.txt'}"),
         "does not exist"),
    Case("wrong-dimension vectors", lambda w: train(w, w.corpus, "--set", f"embedding.path={vectors(w.root, GOOD_VECTORS)}",
                                                    "--set", "embedding.dim=8"), "3-dimensional"),
    Case("ragged vector file", lambda w: train(w, w.corpus, "--set", "embedding.dim=3", "--set",
                                               f"embedding.path={vectors(w.root, GOOD_VECTORS[:1] + ['cat 1', 'dog 2 3'])}"),
         "ragged"),
    Case("gzip vector file that is cut short", lambda w: train(
        w, w.corpus, "--set", "embedding.dim=3",
        "--set", f"embedding.path={corpus(w.root, gzip.compress(('the 1 2 3' + chr(10)).encode() * 999)[:-30], 'v.gz')}"),
        "v.gz"),
    # what train may write into: never a folder that is not a run, never a run before every check
    Case("restart with a mistyped corpus keeps the trained run", lambda w: [
        "train", w.root / "missing.txt", "--run", w.run, "--restart", *TINY], "does not exist", lambda w: w.run),
    Case("restart with a bad config keeps the trained run", lambda w: [
        "train", w.corpus, "--run", w.run, "--restart", *TINY, "--set", "model.units=0"], "model.units must be",
        lambda w: w.run),
    Case("train into a folder of the user's own files", lambda w: ["train", w.corpus, "--run", w.user, *TINY],
         "is not an lstm-textgen run directory and is not empty"),
    Case("restart in a folder of the user's own files", lambda w: [
        "train", w.corpus, "--run", w.user, "--restart", *TINY], "is not an lstm-textgen run directory"),
    Case("a finished run whose checkpoints were deleted is not started over", lambda w: [
        "train", w.corpus, "--run", w.broken(without_checkpoints), *TINY, "--set", "train.epochs=3"],
        "cannot continue exactly where it stopped", lambda w: w.damaged),
    Case("a run directory inside the corpus folder", lambda w: [
        "train", w.books, "--run", w.books / "run", *TINY], "is inside the corpus folder"),
    Case("a run directory the corpus glob reads", lambda w: [
        "train", str(w.books / "**" / "*.txt"), "--run", w.books / "run", *TINY], "where the corpus glob"),
    Case("resume with another model shape", lambda w: [
        "train", w.corpus, "--run", w.run, *TINY, "--set", "model.units=9"], "model.units (8 -> 9)", lambda w: w.run),
    Case("resume on a changed corpus", lambda w: [
        "train", corpus(w.root, TINY_TEXT + "a zebra appears .\n", "changed.txt"), "--run", w.broken(
            lambda run: shutil.rmtree(run / "tokens")), *TINY, "--set", "train.epochs=3"],
        "is not the text the run started on", lambda w: w.damaged),
    Case("--resume where there is no run", lambda w: train(w, w.corpus, "--resume"), "has no run to resume"),
    Case("train into a path under a file", lambda w: ["train", w.corpus, "--run", w.corpus / "run", *TINY],
         "cannot write to run directory"),
    # fine-tuning (--from): the base run is only read, and a refused start leaves no new run
    Case("fine-tune from a base that does not exist", lambda w: train(w, w.corpus, "--from", w.root / "nothing"),
         "does not exist; train one with"),
    Case("fine-tune from a folder that is not a run", lambda w: train(w, w.corpus, "--from", w.user),
         "is not an lstm-textgen run directory"),
    Case("fine-tune from a damaged model.keras", lambda w: train(w, w.corpus, "--from", w.broken(
        lambda c: (c / "model.keras").write_bytes((c / "model.keras").read_bytes()[:5000]))), "corrupt"),
    Case("fine-tune from a base with no finished epoch", lambda w: train(w, w.corpus, "--from", w.broken(half_trained)),
         "training has not finished an epoch"),
    Case("fine-tune on a corpus with no word the base knows", lambda w: train(
        w, corpus(w.root, "zebra giraffe okapi yak " * 60), "--from", w.run), "the base run knows no word-level token"),
    Case("fine-tune freezing a layer the model lacks", lambda w: train(
        w, w.corpus, "--from", w.run, "--set", "train.freeze=[lstm_9]"), "train.freeze names 'lstm_9'"),
    Case("fine-tune with another model shape", lambda w: train(w, w.corpus, "--from", w.run, "--set", "model.units=9"),
         "model.units (8 -> 9)"),
    Case("fine-tune at another level", lambda w: train(w, w.corpus, "--from", w.run, "--set", "data.level=char"),
         "data.level ('word' -> 'char')"),
    Case("fine-tune with pretrained vectors", lambda w: train(
        w, w.corpus, "--from", w.run, "--set", f"embedding.path={vectors(w.root, GOOD_VECTORS)}"),
        "embedding.path (None ->"),
    Case("extend below the base's vocabulary", lambda w: train(
        w, w.corpus, "--from", w.run, "--set", "data.base_vocab=extend", "--set", "data.max_vocab=5"),
        "is below the base run's vocabulary"),
    Case("fine-tune into the base run itself", lambda w: ["train", w.corpus, "--from", w.run, "--run", w.run, *TINY],
         "which fine-tuning only reads"),
    # run directories
    Case("run directory that is not one", lambda w: gen(w.user), "is not an lstm-textgen run directory"),
    Case("run directory that does not exist", lambda w: gen(w.root / "nothing"), "does not exist"),
    Case("run directory that is a file", lambda w: gen(w.corpus), "is a file"),
    Case("run directory that is a link to a folder that is gone", lambda w: gen(
        (w.root / "link").symlink_to(w.root / "gone") or w.root / "link"), "is a link to a folder that is gone"),
    Case("missing model.keras", lambda w: gen(w.broken(lambda c: (c / "model.keras").unlink())),
         "model.keras is missing"),
    Case("model.keras a dangling link", lambda w: gen(w.broken(symlink_away("model.keras"))),
         "a link to a file that is gone"),
    Case("corrupt model.keras", lambda w: gen(w.broken(
        lambda c: (c / "model.keras").write_bytes((c / "model.keras").read_bytes()[:5000]))), "corrupt"),
    Case("corrupt tokenizer.json", lambda w: gen(w.broken(
        lambda c: (c / "tokenizer.json").write_text('{"vocab": '))), "tokenizer.json"),
    Case("tokenizer.json of the wrong shape", lambda w: gen(w.broken(
        lambda c: (c / "tokenizer.json").write_text("[1, 2]"))), "tokenizer.json is damaged"),
    Case("config.yaml a dangling link", lambda w: ["info", "--run", w.broken(symlink_away("config.yaml"))],
         "config.yaml is missing (a link to a file that is gone)"),
    Case("empty config.yaml", lambda w: ["suggest", "--run", w.broken(lambda c: (c / "config.yaml").write_text("")),
                                         "the cat"], "config.yaml is empty"),
    Case("run from an incompatible version", lambda w: gen(w.broken(
        lambda c: (c / "config.yaml").write_text((c / "config.yaml").read_text().replace("schema: 1", "schema: 9")))),
        "schema 9"),
    Case("damaged training state", lambda w: [
        "train", w.corpus, "--run", w.broken(lambda c: (c / "checkpoints" / "state.json").write_text("[]")), *TINY,
        "--set", "train.epochs=3"], "state.json is damaged", lambda w: w.damaged),
    Case("a half-trained run says how to continue it", lambda w: gen(w.broken(half_trained)),
         "continue its training with: lstm-textgen train --run"),
    # generation settings
    Case("empty seed phrase", lambda w: ["generate", "--run", w.run, "--seed", ""], "seed phrase is empty"),
    Case("seed of only unknown words", lambda w: ["generate", "--run", w.run, "--seed", "zebra giraffe"],
         "no word of the seed"),
    Case("negative temperature", lambda w: gen(w.run, "--temperature", "-2"), "--temperature must be >= 0"),
    Case("infinite temperature", lambda w: gen(w.run, "--temperature", "inf"), "--temperature must be a finite"),
    Case("NaN top-p", lambda w: gen(w.run, "--top-p", "nan"), "--top-p must be a finite number"),
    Case("top-p zero", lambda w: gen(w.run, "--top-p", "0"), "--top-p must be in (0, 1]"),
    Case("top-p above one", lambda w: gen(w.run, "--top-p", "1.01"), "--top-p must be in (0, 1]"),
    Case("negative top-k", lambda w: gen(w.run, "--top-k", "-1"), "--top-k must be >= 0"),
    Case("negative length", lambda w: gen(w.run, "-n", "-3"), "must be >= 0"),
    Case("negative random seed", lambda w: gen(w.run, "--random-seed", "-1"), "--random-seed must be >= 0"),
    Case("no seed at all", lambda w: ["generate", "--run", w.run], "give a seed phrase"),
    Case("missing seeds file", lambda w: ["generate", "--run", w.run, "--seeds-file", w.root / "none.txt"], "none.txt"),
    Case("zero samples", lambda w: gen(w.run, "--samples", "0"), "--samples must be >= 1"),
    Case("more samples than memory holds", lambda w: gen(w.run, "--samples", "2000000000"),
         "--samples 2,000,000,000 for 1 seed is a batch of 2,000,000,000 rows, which needs about"),
    Case("novelty sizes that are not numbers", lambda w: gen(w.run, "--novelty", "four"), "--novelty takes"),
    Case("suggest with -k 0", lambda w: ["suggest", "--run", w.run, "the cat", "-k", "0"], "-k/--top must be >= 1"),
    # evaluation, plots and listings
    Case("evaluate a missing file", lambda w: ["evaluate", "--run", w.run, w.root / "none.txt"], "does not exist"),
    Case("evaluate a text shorter than a window", lambda w: ["evaluate", "--run", w.run, corpus(w.root, "the cat")],
         "fewer than one window"),
    Case("evaluate a UTF-16 file", lambda w: ["evaluate", "--run", w.run, corpus(w.root, TINY_TEXT.encode("utf-16"))],
         "UTF-16"),
    Case("evaluate a folder holding runs", lambda w: ["evaluate", "--run", w.run, w.runs], "reads the run directory"),
    Case("serve with an empty API key", lambda w: ["serve", "--run", w.run, "--api-key", ""], "the key is empty"),
    Case("serve with an API key of spaces", lambda w: ["serve", "--run", w.run, "--api-key", " a b "],
         "holds spaces or control characters"),
    Case("plot into a folder", lambda w: ["plot", "--run", w.run, "-o", w.user], "is a folder"),
    Case("plot under a file", lambda w: ["plot", "--run", w.run, "-o", w.corpus / "fig.png"], "cannot write"),
    Case("plot with an unknown image type", lambda w: ["plot", "--run", w.run, "-o", w.root / "fig.xyz"],
         "use a name ending in .png"),
    Case("plot a run with no finished epoch", lambda w: ["plot", "--run", w.broken(half_trained), "-o", w.root / "f.png"],
         "has no finished epoch yet"),
    Case("info on a folder that is not a run", lambda w: ["info", "--run", w.user], "is not an lstm-textgen run"),
    Case("runs on a missing folder", lambda w: ["runs", w.root / "nothing"], "does not exist"),
    Case("runs on a file", lambda w: ["runs", w.corpus], "is a file"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_error_line_and_touches_nothing_else(case, tmp_path, tiny_run):
    world = World(tmp_path, tiny_run)
    args = [str(a) for a in case.args(world)]  # the case makes its own inputs first
    target = case.target(world) if case.target else None
    before = snapshot(tmp_path)
    check_one_error(CliRunner().invoke(cli, args), case.fragment)
    after = snapshot(tmp_path)
    inside = (lambda name: target is not None and (tmp_path / name).is_relative_to(target))
    assert {k: v for k, v in after.items() if not inside(k)} == {k: v for k, v in before.items() if not inside(k)}
    lost = [name for name in before if inside(name) and name not in after and not name.endswith("lstm-textgen-lock")]
    assert not lost, f"the run lost {lost}"
    assert not world.new_run.exists()  # a refused train leaves no half-made run directory
    # The finished run still generates.
    again = CliRunner().invoke(cli, ["generate", "--run", str(world.run), "--seed", "the cat", "-n", "3",
                                     "--random-seed", "1"])
    assert again.exit_code == 0, again.output


def test_the_table_covers_every_command(tmp_path, tiny_run):
    world = World(tmp_path, tiny_run)
    commands = {str(case.args(world)[0]) for case in CASES}
    assert commands == {"train", "generate", "evaluate", "suggest", "info", "runs", "plot", "serve"}
    assert len(CASES) >= 60


def test_full_disk_while_training_is_one_error_and_resumable(tmp_path, tiny_corpus, monkeypatch):
    import lstm_textgen.training.callbacks as callbacks

    real_save = callbacks.save_model

    def full_disk(model, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(callbacks, "save_model", full_disk)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run), *TINY, "--set", "train.epochs=2"])
    check_one_error(result, "No space left on device")
    monkeypatch.setattr(callbacks, "save_model", real_save)
    again = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run), *TINY, "--set", "train.epochs=2"])
    assert again.exit_code == 0, again.output
    assert (run / "model.keras").is_file()


def test_full_disk_while_writing_a_file_names_it(tmp_path, tiny_corpus, monkeypatch):
    import lstm_textgen.atomic as atomic

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(tmp_path / "run"), *TINY])
    check_one_error(result, "lstm-textgen-run.json")  # the first file a run gets
    assert not [p for p in (tmp_path / "run").rglob("*") if p.is_file()]  # no temporary left behind


def unwritable(tmp_path: Path) -> Path:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root writes anywhere on a normal disk; /sys refuses everyone
        folder = Path("/sys/lstm-textgen-test-run")
    return folder / "run"


def test_run_directory_that_is_not_writable(tmp_path, tiny_corpus):
    run = unwritable(tmp_path)
    result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run), *TINY])
    check_one_error(result, "cannot write to run directory")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300),
       key=st.sampled_from(["model.units", "data.window_size", "data.max_vocab", "train.batch_size",
                            "data.val_fraction", "model.dropout", "data.level", "model.objective", "train.epochs"]),
       value=st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=8), st.booleans(),
                       st.none()))
def test_random_text_and_config_values_never_show_a_traceback(tmp_path_factory, text, key, value):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "c.txt"
    path.write_text(text, encoding="utf-8")  # st.text() leaves out surrogates, so this always encodes
    value_text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    # steps_per_epoch=1 and epochs=1 keep each example that does train short
    result = CliRunner().invoke(cli, ["train", str(path), "--run", str(folder / "run"), *TINY,
                                      "--set", "train.steps_per_epoch=1", "--set", f"{key}={value_text}"])
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert [line for line in result.output.splitlines() if line.startswith("Error:")]


def test_pruning_and_restart_keep_a_persons_files_anywhere_in_the_run(tmp_path, tiny_corpus):
    """Checkpoints pruned, states replaced, --restart: only the names the program writes go, never a pattern's."""
    run = tmp_path / "run"
    first = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run), *TINY, "--set", "train.epochs=1"])
    assert first.exit_code == 0, first.output
    mine = {"notes.txt": "a", "checkpoints/epoch_best.keras": "b", "checkpoints/epoch_1.keras": "c",
            "checkpoints/state_old.weights.h5": "d", "checkpoints/notes.txt": "e", "tokens/train.npy.bak": "f",
            "checkpoints/.lstm-textgen-tmp-notes.txt.abcd1234.tmp": "g", "mine/model.keras": "h",
            "tensorboard/train/events.out.tfevents.1.mine.1.0.v2": "i", "checkpoints/epoch_0001.keras": "j"}
    for name, text in mine.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    more = ["--set", "train.epochs=3", "--set", "train.keep_checkpoints=1", "--set", "train.backup_every_steps=1"]
    for extra in (more, ["--restart", *more]):
        result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run), *TINY, *extra])
        assert result.exit_code == 0, result.output
        assert {name: (run / name).read_text() for name in mine} == mine
    kept = sorted(p.name for p in (run / "checkpoints").glob("epoch_???.keras"))
    assert "epoch_003.keras" in kept and len(kept) <= 2  # the last (keep_checkpoints=1) and the best
