"""Helpers the test files share: the command line invoked, its one error line checked, a folder's files hashed,
a training killed at the right moment, a figure's lines read back, and the real server started on a free port."""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.serve.server import Server, bind, load_served

from conftest import TINY_SETTINGS


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
