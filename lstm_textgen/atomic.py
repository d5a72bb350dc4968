"""Files: written atomically (to a temporary name in the same folder, then renamed into place), and a JSON
object read back with every way it can fail named."""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Iterator


PREFIX = ".lstm-textgen-tmp-"  # no user file has this name: only such files are ever swept away
# A temporary name: PREFIX + the final name + "." + mkstemp's 8 random characters + the writer's suffix.
TEMPORARY = re.compile(re.escape(PREFIX) + r"(.+)\.[a-z0-9_]{8}(?:\.tmp|\.keras|\.weights\.h5|\.npy|\.png|\.svg|\.pdf|\.html)")


@contextlib.contextmanager
def replacing(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    suffix is the ending the writer insists on (Keras wants ".keras" or ".weights.h5").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{PREFIX}{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; a run directory's files are ordinary files
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


def remove_temporaries(folder: Path, ours: Callable[[str], bool]) -> None:
    """Delete the temporary files a killed process left in folder (they were never renamed into place), for the
    final names ours(name) accepts: a temporary of a name the program does not write there is not its own."""
    for leftover in folder.glob(PREFIX + "*"):
        match = TEMPORARY.fullmatch(leftover.name)
        if match and ours(match.group(1)) and leftover.is_file() and not leftover.is_symlink():
            leftover.unlink(missing_ok=True)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: Path, error: type[Exception]) -> dict:
    """The JSON object in path, or error("<path> is missing / unreadable / damaged ...")."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        gone = " (a link to a file that is gone)" if path.is_symlink() else ""
        raise error(f"{path} is missing{gone}") from None
    except (OSError, ValueError) as e:
        raise error(f"{path} is unreadable or damaged ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise error(f"{path} is damaged (it holds a {type(data).__name__}, not an object)")
    return data
