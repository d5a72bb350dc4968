"""The command group: help and version, starting without TensorFlow, and one Error: line that starts its own
line even after streamed text."""
import errno
import shutil
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from lstm_textgen.cli.base import refuse_together, setting_options, stream, user_errors
from lstm_textgen.config import GenerateConfig
from lstm_textgen.config.setting import declared
from lstm_textgen.errors import TextgenError

from helpers import invoke


@click.group()
@click.option("--debug", is_flag=True)
def group(debug):
    pass


@group.command()
@click.argument("what")
def fail(what):
    errors = {"ours": TextgenError("the run\x1b[2J is damaged\nsee above"), "memory": MemoryError(),
              "disk": OSError(errno.ENOSPC, "No space left on device", "runs/r/model.keras"),
              "interrupt": KeyboardInterrupt(), "bug": ValueError("a bug")}
    with user_errors(memory_hint="lower --samples"):
        stream("half a line")
        raise errors[what]


@pytest.mark.parametrize("what, line", [
    ("ours", "Error: the run\\x1b[2J is damaged see above"),
    ("memory", "Error: out of memory; lower --samples"),
    ("disk", "Error: No space left on device writing runs/r/model.keras; free some space or choose a writable --run"),
])
def test_a_users_or_machines_error_is_one_line_on_its_own_line(what, line):
    result = CliRunner().invoke(group, ["fail", what])
    assert result.exit_code == 1 and result.output.splitlines() == ["half a line", line]


def test_ctrl_c_exits_130_and_a_bug_keeps_its_traceback():
    interrupted = CliRunner().invoke(group, ["fail", "interrupt"])
    assert interrupted.exit_code == 130 and interrupted.output.splitlines()[-1] == "Error: interrupted"
    bug = CliRunner().invoke(group, ["fail", "bug"])
    assert isinstance(bug.exception, ValueError)
    debugged = CliRunner().invoke(group, ["--debug", "fail", "ours"])
    assert isinstance(debugged.exception, TextgenError)  # --debug: the traceback, not the line


def test_options_given_together_are_a_usage_error_before_anything_runs():
    refuse_together(("--a", None), ("--b", False), ("--c", ()), ("--d", 3), why="never")  # one given: fine

    @click.command()
    def both():
        refuse_together(("--resume", True), ("--restart", True), why="one or the other")
    result = CliRunner().invoke(both, [])
    assert result.exit_code == 2 and "--resume and --restart cannot be used together: one or the other" in result.output


def test_every_setting_with_a_flag_is_an_option_that_defaults_to_the_runs_value():
    @click.command()
    @setting_options("generate")
    def show(**settings):
        click.echo(sorted(name for name, value in settings.items() if value not in (None, ())))

    flags = {name: rule.flag for name, _, _, rule in declared(GenerateConfig) if rule.flag}
    assert len(flags) >= 12
    text = " ".join(CliRunner().invoke(show, ["--help"]).output.split())
    assert all(flag.split("/")[-1] in text for flag in flags.values())
    assert "(default: the run's generate.min_p)" in text
    given = CliRunner().invoke(show, ["--min-p", "0.1", "--stop", "x", "--greedy"])
    assert given.output.strip() == str(["greedy", "min_p", "stop"])


def test_help_and_version():
    root = invoke("--help")
    assert root.exit_code == 0
    for command in ("train", "generate", "suggest", "evaluate", "plot", "info", "runs"):
        summary = next(line for line in root.output.splitlines() if line.strip().startswith(command + " "))
        assert not summary.rstrip().endswith("..."), summary  # every summary fits, none cut off
    for command in ("train", "generate", "evaluate"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output
    from lstm_textgen import __version__
    assert invoke("--version").output.strip() == f"lstm-textgen, version {__version__}"


def test_cli_starts_without_tensorflow():
    code = ("import sys; from lstm_textgen.cli import cli; "
            "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_error_after_streamed_text_starts_its_own_line(tiny_run, tmp_path):
    """--novelty reads the training tokens after the sample has streamed: with them gone, the Error: line
    must not be glued to the sample when stdout and stderr share a log."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "tokens" / "train.npy").unlink()
    out = subprocess.run([sys.executable, "-m", "lstm_textgen", "generate", "--run", str(run), "--seed", "the cat",
                          "-n", "5", "--random-seed", "1", "--novelty"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith("the cat") and not lines[0].endswith("Error:")
    errors = [line for line in lines if "Error:" in line]
    assert len(errors) == 1 and errors[0].startswith("Error: ") and "train.npy" in errors[0]
