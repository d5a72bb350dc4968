"""One training at a time per run directory: a second is refused naming the first; a killed one's lock is
taken over."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.errors import CheckpointError
from lstm_textgen.run.files import LOCK
from lstm_textgen.run.lock import RunLock

from conftest import TINY_SETTINGS


def test_a_held_lock_refuses_a_second_holder_and_names_it(tmp_path):
    first = RunLock(tmp_path, LOCK)
    first.acquire()
    holder = json.loads((tmp_path / LOCK).read_text())
    assert holder["pid"] == os.getpid()
    second = RunLock(tmp_path, LOCK)
    with pytest.raises(CheckpointError, match=f"is being trained by process {os.getpid()}"):
        second.acquire()  # flock is per open file: a second open in the same process is refused too
    first.release()
    second.acquire()  # free again once released
    second.release()


def test_the_lock_of_a_process_that_died_is_taken_over(tmp_path, caplog):
    caplog.set_level("INFO", logger="lstm_textgen")
    (tmp_path / LOCK).write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))
    lock = RunLock(tmp_path, LOCK)
    lock.acquire()
    assert f"taking over the lock of {tmp_path} left by process {2**22 + 12345}" in caplog.text
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    lock.release()


@pytest.mark.slow
def test_two_trainings_into_one_run_directory(tmp_path):
    """The second is refused in one line naming the first; after kill -9 of the first the same command runs."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat . the dog sat on the log .\n" * 400)
    run = tmp_path / "run"
    settings = [*TINY_SETTINGS, "train.epochs=1000", "train.steps_per_epoch=5", "train.sample_every=null"]
    args = ["train", str(corpus), "--run", str(run), *[a for s in settings for a in ("--set", s)]]
    first = subprocess.Popen([sys.executable, "-m", "lstm_textgen", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "state.json").exists():  # it is training
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        second = CliRunner().invoke(cli, args)
        assert second.exit_code == 1
        errors = [line for line in second.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and f"is being trained by process {first.pid}" in errors[0], second.output
        assert "Traceback" not in second.output
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    again = CliRunner().invoke(cli, [*args, "--set", "train.epochs=1"], catch_exceptions=False)  # it has done 1+
    assert again.exit_code == 0, again.output
    assert f"taking over the lock of {run} left by process {first.pid}" in again.stderr
