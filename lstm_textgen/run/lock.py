"""One training at a time per run directory: a lock file held (flock) for as long as the training runs.

The kernel lets go of an flock when its process ends, however it ends (kill -9 included), so a lock left
by a killed training is free again; the file still names that process, and the next training says it takes
the lock over. Where flock does not exist the file is made exclusively and a holder that no longer runs is
taken over.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path

from lstm_textgen.errors import CheckpointError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger("lstm_textgen")


class RunLock:
    """The lock of a run directory: acquire() when the folder exists, release() (or the process's end) frees it."""

    def __init__(self, run_dir: Path, name: str):
        self.path, self.run_dir, self.fd = Path(run_dir) / name, Path(run_dir), None

    def acquire(self) -> None:
        if self.fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | (0 if fcntl else os.O_EXCL), 0o644)
        except FileExistsError:  # no flock: the file itself is the lock
            holder = _read(self.path)
            if _alive(holder):
                raise CheckpointError(_busy(self.run_dir, holder)) from None
            self.path.unlink(missing_ok=True)
            return self.acquire()
        except OSError as e:
            raise CheckpointError(f"cannot write to run directory {self.run_dir}: {e.strerror or e}; "
                                  "choose a writable --run") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise CheckpointError(_busy(self.run_dir, _read(self.path))) from None
        before = _read(self.path)
        if before.get("pid") not in (None, os.getpid()):
            log.info(f"taking over the lock of {self.run_dir} left by process {before.get('pid')}, which has ended")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)  # an empty lock file names no holder
            if fcntl is None:
                self.path.unlink(missing_ok=True)
        os.close(self.fd)  # closing lets go of the flock
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(path: Path) -> dict:
    with contextlib.suppress(OSError, ValueError):
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
        return holder if isinstance(holder, dict) else {}
    return {}


def _alive(holder: dict) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") not in (None, socket.gethostname()):
        return isinstance(pid, int)  # another machine's process: assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _busy(run_dir: Path, holder: dict) -> str:
    who = f"process {holder['pid']}" if "pid" in holder else "another process"
    where = f" on {holder['host']}" if holder.get("host") not in (None, socket.gethostname()) else ""
    since = f" since {holder['started']}" if "started" in holder else ""
    return (f"{run_dir} is being trained by {who}{where}{since}; wait for it to finish, or stop it (Ctrl-C or "
            "kill: it saves its state) and run the same command again")
