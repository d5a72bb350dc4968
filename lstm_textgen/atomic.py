"""Atomic file writes: write to a temporary name in the same folder, then rename into place."""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator


# A temporary name: "." + the final name + "." + mkstemp's 8 random characters + a suffix.
TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}(\.tmp|\.[A-Za-z0-9.]+)$")


@contextlib.contextmanager
def replacing(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    suffix is the ending the writer insists on (Keras wants ".keras" or ".weights.h5").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a run directory's files are ordinary files
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as e:
        if e.filename is None:  # name the file a full disk or a lost permission kept us from writing
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def remove_temporaries(folder: Path) -> None:
    """Delete temporary files a killed process left in folder (they were never renamed into place)."""
    for leftover in folder.glob(".*"):
        if leftover.is_file() and TEMPORARY.match(leftover.name):
            leftover.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
