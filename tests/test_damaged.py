"""Damaged run files: every run file x {missing, empty, truncated, wrong JSON/YAML type, garbage, dangling link} x
every command that reads it ends in exactly one `Error:` line naming the file, a non-zero exit and no traceback,
and nothing on disk changes (the damaged run loses no file). `info` and `runs` also mark the run damaged in what
they print, naming the file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli

from conftest import TINY_SETTINGS, TINY_TEXT
from helpers import check_one_error, snapshot

TINY = [a for s in TINY_SETTINGS for a in ("--set", s)]
GARBAGE = bytes(range(256)) * 8


def truncate(path: Path) -> None:
    """Cut the file short in the middle of a line (a cut just after a line end would leave whole lines)."""
    data = path.read_bytes()
    cut = len(data) // 2
    while cut > 1 and data[cut - 1:cut] == b"\n":
        cut -= 1
    path.write_bytes(data[:cut])


def wrong_type(path: Path) -> None:
    """Well-formed text of the wrong shape: a JSON list, a YAML list, a JSON object where a binary file belongs."""
    text = {".json": '["a", "list"]', ".yaml": "- a\n- list\n"}.get(path.suffix, '{"a": "JSON object"}\n')
    path.write_text(text)


def dangle(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "gone")


DAMAGES = {"missing": Path.unlink, "empty": lambda p: p.write_bytes(b""), "truncated": truncate,
           "wrong type": wrong_type, "garbage": lambda p: p.write_bytes(GARBAGE), "dangling link": dangle}


class World:
    """A copy of a finished run in runs/, a held-out text and a corpus of the person's, in one folder."""

    def __init__(self, root: Path, trained: Path):
        self.root, self.run = root, root / "runs" / "run"
        shutil.copytree(trained, self.run)
        self.text = root / "held_out.txt"
        self.text.write_text(TINY_TEXT)
        self.corpus = root / "letters.txt"
        self.corpus.write_text(TINY_TEXT)


COMMANDS = {
    "generate": lambda w: ["generate", "--run", w.run, "--seed", "the cat", "-n", "3", "--random-seed", "1"],
    "suggest": lambda w: ["suggest", "--run", w.run, "the cat"],
    "evaluate": lambda w: ["evaluate", "--run", w.run, w.text],
    "info": lambda w: ["info", "--run", w.run],
    "runs": lambda w: ["runs", w.run.parent],
    "plot": lambda w: ["plot", "--run", w.run, "-o", w.root / "figure.png"],
    "train on": lambda w: ["train", "--run", w.run, "--set", "train.epochs=3"],  # continue the run
    "train, finished": lambda w: ["train", "--run", w.run],  # nothing to do, then its figures are shown
    "fine-tune from": lambda w: ["train", w.corpus, "--from", w.run, "--run", w.root / "tuned", *TINY],
    "serve": lambda w: ["serve", "--run", w.run, "--port", "0"],
    "export web": lambda w: ["export", "--run", w.run, "--format", "web", "-o", w.root / "page"],
    "export onnx": lambda w: ["export", "--run", w.run, "--format", "onnx", "-o", w.root / "onnx"],
}
GENERATION = ["generate", "suggest", "evaluate", "info", "runs", "fine-tune from", "serve", "export web", "export onnx"]
STATE_WEIGHTS = "<the weights checkpoints/state.json names>"
# run file -> the commands that read it (and so must name it when it is damaged); damages that are not damage to
# that file (a run whose checkpoints were pruned or deleted is whole) are left out
READS = {
    "config.yaml": [*GENERATION, "train on"],
    "tokenizer.json": [*GENERATION, "train on"],
    "model.keras": GENERATION,
    "metrics.json": ["info", "runs", "train, finished", "fine-tune from", "serve", "export web", "export onnx"],
    "history.csv": ["info", "runs", "plot", "serve"],
    "checkpoints/state.json": ["info", "runs", "train on"],
    STATE_WEIGHTS: ["info", "runs"],  # `train on` goes back to the last epoch checkpoint: test_resume
    "checkpoints/epoch_002.keras": ["info", "runs"],
}
NOT_DAMAGE = {("checkpoints/state.json", "missing", "info"), ("checkpoints/state.json", "missing", "runs"),
              ("checkpoints/epoch_002.keras", "missing", "info"), ("checkpoints/epoch_002.keras", "missing", "runs")}
CASES = [(name, damage, command) for name, commands in READS.items() for damage in DAMAGES for command in commands
         if (name, damage, command) not in NOT_DAMAGE]


def state_weights(run: Path) -> Path:
    return run / "checkpoints" / json.loads((run / "checkpoints" / "state.json").read_text())["weights"]


@pytest.mark.parametrize("name, damage, command", CASES, ids=[f"{n} {d} {c}" for n, d, c in CASES])
def test_a_damaged_run_file_is_named_by_every_command_that_reads_it(tmp_path, tiny_run, name, damage, command):
    world = World(tmp_path, tiny_run)
    path = state_weights(world.run) if name == STATE_WEIGHTS else world.run / name
    DAMAGES[damage](path)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, [str(a) for a in COMMANDS[command](world)])
    check_one_error(result, "")
    error = next(line for line in result.output.splitlines() if line.startswith("Error: "))
    assert path.name in error, error
    assert snapshot(tmp_path) == before  # nothing written, nothing lost
    if command in ("info", "runs"):  # the listing itself marks it too
        marked = [line for line in result.output.splitlines() if "damaged" in line and not line.startswith("Error")]
        assert marked and path.name in " ".join(marked), result.output


def test_the_table_covers_every_run_file_damage_and_command():
    assert {damage for _, damage, _ in CASES} == set(DAMAGES)
    assert {command for _, _, command in CASES} == set(COMMANDS)
    assert len(READS) == 8 and len(CASES) >= 200


def test_info_still_shows_what_it_can_of_a_damaged_run(tmp_path, tiny_run):
    world = World(tmp_path, tiny_run)
    (world.run / "metrics.json").write_text("[]")
    result = CliRunner().invoke(cli, ["info", "--run", str(world.run), "--json"])
    assert result.exit_code == 1 and result.stderr.startswith("Error: run ")
    info = json.loads(result.stdout)
    assert info["corpus"] and info["layers"] and info["epochs"] == 2  # from the files that are whole
    assert [d["file"] for d in info["damaged"]] == ["metrics.json"]


def test_runs_lists_the_whole_runs_beside_a_damaged_one(tmp_path, tiny_run):
    for name in ("a", "b"):
        shutil.copytree(tiny_run, tmp_path / "runs" / name)
    (tmp_path / "runs" / "b" / "history.csv").write_text("epoch,loss\n1,0.5\n")
    result = CliRunner().invoke(cli, ["runs", str(tmp_path / "runs")])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1].startswith("a ") and lines[1].rstrip().endswith("ok")
    assert lines[2].startswith("b ") and lines[2].rstrip().endswith("damaged: history.csv")
    assert result.stderr.startswith("Error: 1 of the 2 runs is damaged: ") and "(history.csv)" in result.stderr


def test_a_run_before_its_first_epoch_is_not_damaged(tmp_path, tiny_run):
    run = tmp_path / "runs" / "run"
    shutil.copytree(tiny_run, run)
    for name in ("model.keras", "history.csv", "metrics.json"):
        (run / name).unlink()
    shutil.rmtree(run / "checkpoints")
    result = CliRunner().invoke(cli, ["runs", str(run.parent)], catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout.splitlines()[1].rstrip().endswith("not trained yet")
    result = CliRunner().invoke(cli, ["info", "--run", str(run)], catch_exceptions=False)
    assert result.exit_code == 0 and "no model.keras yet" in result.stdout


def test_a_finished_run_that_lost_model_keras_is_not_called_untrained(tmp_path, tiny_run):
    run = tmp_path / "runs" / "run"
    shutil.copytree(tiny_run, run)
    (run / "model.keras").unlink()
    result = CliRunner().invoke(cli, ["info", "--run", str(run)])
    assert result.exit_code == 1 and "no epoch has finished" not in result.output
    assert "model.keras is missing; its best epoch is saved: copy it back with: cp " in result.stderr
