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

TINY = [a for s in TINY_SETTINGS for a in ("--set", s)]


@dataclass
class Case:
    name: str
    args: Callable[[Path, Path], list]  # (folder, a good trained run) -> command line
    fragment: str  # what the Error: line must say


def corpus(folder: Path, data: bytes | str, name: str = "c.txt") -> Path:
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def train(folder: Path, corpus_path, *extra) -> list:
    return ["train", corpus_path, "--run", folder / "new_run", *TINY, *extra]


def vectors(folder: Path, lines: list[str], gz: bool = False) -> Path:
    path = folder / ("v.txt.gz" if gz else "v.txt")
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


GOOD_VECTORS = [f"{w} 0.1 0.2 0.3" for w in ("the", "cat", "dog", "sat", "on", "mat")]


def good(folder: Path) -> Path:
    return corpus(folder, TINY_TEXT, "good.txt")


def broken_run(folder: Path, run: Path, damage: Callable[[Path], None]) -> Path:
    copy = folder / "damaged_run"
    shutil.copytree(run, copy)
    damage(copy)
    return copy


def gen(run, *extra) -> list:
    return ["generate", "--run", run, "--seed", "the cat", "-n", "5", *extra]


CASES = [
    # corpora
    Case("empty corpus", lambda d, r: train(d, corpus(d, b"")), "holds no text"),
    Case("whitespace-only corpus", lambda d, r: train(d, corpus(d, " \n\t \n")), "holds no text"),
    Case("binary file", lambda d, r: train(d, corpus(d, bytes(range(256)) * 4)), "looks binary"),
    Case("invalid UTF-8", lambda d, r: train(d, corpus(d, b"good text \xc3\x28 here" * 9)), "not UTF-8"),
    Case("shorter than one window", lambda d, r: train(d, corpus(d, "one two three")), "too short"),
    Case("folder without text files", lambda d, r: train(d, (d / "f").mkdir() or d / "f"), "has no text files"),
    Case("glob matching nothing", lambda d, r: train(d, str(d / "*.nothing")), "matches no files"),
    Case("missing corpus", lambda d, r: train(d, d / "absent.txt"), "does not exist"),
    # configs
    Case("YAML that does not parse", lambda d, r: train(d, good(d), "--config", corpus(d, "a: [1,", "c.yaml")),
         "not valid YAML"),
    Case("config that is a list", lambda d, r: train(d, good(d), "--config", corpus(d, "- 1\n- 2\n", "c.yaml")),
         "must be a mapping"),
    Case("config file missing", lambda d, r: train(d, good(d), "--config", d / "none.yaml"), "does not exist"),
    Case("config is a folder", lambda d, r: train(d, good(d), "--config", d), "is a directory"),
    Case("unknown key", lambda d, r: train(d, good(d), "--set", "model.colour=red"), "unknown config key"),
    Case("misspelt key", lambda d, r: train(d, good(d), "--set", "trian.epochs=2"), "did you mean 'train.epochs'"),
    Case("wrong type", lambda d, r: train(d, good(d), "--set", "train.batch_size=big"), "must be int"),
    Case("negative size", lambda d, r: train(d, good(d), "--set", "model.units=-8"), "model.units must be >= 1"),
    Case("zero size", lambda d, r: train(d, good(d), "--set", "train.batch_size=0"), "train.batch_size must be >= 1"),
    Case("max_vocab below 3", lambda d, r: train(d, good(d), "--set", "data.max_vocab=2"), "data.max_vocab"),
    Case("tie_weights with dense_units != embedding.dim", lambda d, r: train(
        d, good(d), "--set", "model.tie_weights=true", "--set", "model.dense_units=6"), "model.tie_weights needs"),
    Case("stateful with objective last", lambda d, r: train(
        d, good(d), "--set", "train.stateful=true", "--set", "model.objective=last"), "train.stateful needs"),
    Case("max_minutes zero", lambda d, r: train(d, good(d), "--set", "train.max_minutes=0"), "train.max_minutes"),
    Case("stateful streams too short for the validation tail", lambda d, r: train(
        d, good(d), "--set", "train.stateful=true", "--set", "train.batch_size=200"), "train.batch_size"),
    Case("--set without =", lambda d, r: train(d, good(d), "--set", "model.units"), "--set expects KEY=VALUE"),
    # vector files
    Case("missing vector file", lambda d, r: train(d, good(d), "--set", f"embedding.path={d / 'no.txt'}"),
         "does not exist"),
    Case("wrong-dimension vectors", lambda d, r: train(d, good(d), "--set", f"embedding.path={vectors(d, GOOD_VECTORS)}",
                                                       "--set", "embedding.dim=8"), "3-dimensional"),
    Case("ragged vector file", lambda d, r: train(d, good(d), "--set", "embedding.dim=3", "--set",
                                                  f"embedding.path={vectors(d, GOOD_VECTORS[:1] + ['cat 1', 'dog 2 3'])}"),
         "ragged"),
    Case("gzip vector file that is cut short", lambda d, r: train(
        d, good(d), "--set", "embedding.dim=3",
        "--set", f"embedding.path={corpus(d, gzip.compress(('the 1 2 3' + chr(10)).encode() * 999)[:-30], 'v.gz')}"),
        "v.gz"),
    # run directories
    Case("run directory that is not one", lambda d, r: gen(d), "is not an lstm-textgen run directory"),
    Case("run directory that does not exist", lambda d, r: gen(d / "nothing"), "does not exist"),
    Case("run directory that is a file", lambda d, r: gen(good(d)), "is a file"),
    Case("missing model.keras", lambda d, r: gen(broken_run(d, r, lambda c: (c / "model.keras").unlink())),
         "model.keras is missing"),
    Case("corrupt model.keras", lambda d, r: gen(broken_run(
        d, r, lambda c: (c / "model.keras").write_bytes((c / "model.keras").read_bytes()[:5000]))), "corrupt"),
    Case("corrupt tokenizer.json", lambda d, r: gen(broken_run(
        d, r, lambda c: (c / "tokenizer.json").write_text('{"vocab": '))), "tokenizer.json"),
    Case("run from an incompatible version", lambda d, r: gen(broken_run(
        d, r, lambda c: (c / "config.yaml").write_text((c / "config.yaml").read_text().replace("schema: 1", "schema: 9")))),
        "schema 9"),
    Case("resume with another model shape", lambda d, r: [
        "train", r.parent / "corpus.txt", "--run", broken_run(d, r, lambda c: None), *TINY, "--set", "model.units=9"],
        "model.units (8 -> 9)"),
    # generation settings
    Case("empty seed phrase", lambda d, r: ["generate", "--run", r, "--seed", ""], "seed phrase is empty"),
    Case("seed of only unknown words", lambda d, r: ["generate", "--run", r, "--seed", "zebra giraffe"],
         "no word of the seed"),
    Case("temperature zero", lambda d, r: gen(r, "--temperature", "0"), "--temperature must be > 0"),
    Case("negative temperature", lambda d, r: gen(r, "--temperature", "-2"), "--temperature must be > 0"),
    Case("top-p zero", lambda d, r: gen(r, "--top-p", "0"), "--top-p must be in (0, 1]"),
    Case("top-p above one", lambda d, r: gen(r, "--top-p", "1.01"), "--top-p must be in (0, 1]"),
    Case("negative top-k", lambda d, r: gen(r, "--top-k", "-1"), "--top-k must be >= 0"),
    Case("negative length", lambda d, r: gen(r, "-n", "-3"), "must be >= 0"),
    Case("no seed at all", lambda d, r: ["generate", "--run", r], "give a seed phrase"),
    Case("missing seeds file", lambda d, r: ["generate", "--run", r, "--seeds-file", d / "none.txt"], "none.txt"),
    Case("zero samples", lambda d, r: gen(r, "--samples", "0"), "--samples must be >= 1"),
    # evaluation
    Case("evaluate a missing file", lambda d, r: ["evaluate", "--run", r, d / "none.txt"], "does not exist"),
    Case("evaluate a text shorter than a window", lambda d, r: ["evaluate", "--run", r, corpus(d, "the cat")],
         "fewer than one window"),
]


def check_one_error(result, fragment: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no uncaught exception
    lines = [line.split("\r")[-1] for line in result.output.splitlines()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_error_line_and_leaves_runs_usable(case, tmp_path, tiny_run):
    run = tmp_path / "good_run"
    shutil.copytree(tiny_run, run)
    check_one_error(CliRunner().invoke(cli, [str(a) for a in case.args(tmp_path, run)]), case.fragment)
    # The good run still generates, and a failed train left nothing half-made in its directory.
    after = CliRunner().invoke(cli, ["generate", "--run", str(run), "--seed", "the cat", "-n", "3",
                                     "--random-seed", "1"])
    assert after.exit_code == 0, after.output
    new_run = tmp_path / "new_run"
    assert not (new_run / "model.keras").exists() and not (new_run / "config.yaml").exists()


def test_the_table_is_large():
    assert len(CASES) >= 30


def test_full_disk_while_training_is_one_error_and_resumable(tmp_path, tiny_corpus, monkeypatch):
    import lstm_textgen.callbacks as callbacks

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
