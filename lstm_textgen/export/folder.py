"""The export folder: where it may go, its manifest (what marks a folder as an export of this program and lists
every file it holds), and writing it whole or not at all: everything is made in a temporary folder beside it and
moved into place only once checked; an earlier export there loses exactly the files its manifest lists."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from lstm_textgen.atomic import PREFIX, umask
from lstm_textgen.errors import ExportError
from lstm_textgen.outputs import STAMP

MANIFEST, README = "manifest.json", "README.md"
_LEFTOVER = re.compile(re.escape(PREFIX) + r"(.+)\.[a-z0-9_]{8}")


def default_out(run_dir: Path, fmt: str, quantize: str | None) -> Path:
    """Beside the run: runs/demo -> runs/demo-onnx (runs/demo-tflite-int8 when quantized)."""
    run_dir = Path(run_dir).resolve()
    return run_dir.parent / "-".join([run_dir.name, fmt, *([quantize] if quantize else [])])


def read_manifest(folder: Path) -> dict | None:
    """The manifest of an export this program wrote in folder, or None when folder holds none."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ours = (isinstance(manifest, dict) and str(manifest.get("generator", "")).startswith("lstm-textgen ")
            and isinstance(manifest.get("files"), list) and all(isinstance(f, str) for f in manifest["files"]))
    return manifest if ours else None


def check_out(out: Path, run_dir: Path) -> None:
    """Refuse, before anything is made, an OUT that is a file, lies inside the run (or holds it), sits under a
    file, or is a folder with things in it that is not an export of this program."""
    out, run = Path(out), Path(run_dir).resolve()
    where = out.resolve()
    if where == run or run in where.parents or where in run.parents:
        raise ExportError(f"-o {out} is {'the run itself' if where == run else 'inside the run' if run in where.parents else 'a folder that holds the run'}; "
                          f"choose a folder outside it, e.g. -o {default_out(run, 'onnx', None)}")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportError(f"-o {out} is a file, not a folder; choose another -o")
    above = next((parent for parent in out.parents if parent.exists() or parent.is_symlink()), None)
    if above is not None and not above.is_dir():
        raise ExportError(f"cannot write {out}: {above} is a file, not a folder; choose another -o")
    if out.is_dir() and any(out.iterdir()) and read_manifest(out) is None:
        raise ExportError(f"-o {out} is a folder that is not an lstm-textgen export (it has no {MANIFEST} of ours); "
                          "choose another -o, or an empty folder")


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A temporary folder beside out to write the export into; put in place by commit(), removed in any case."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for leftover in out.parent.glob(PREFIX + "*"):  # of an export killed before it was moved into place
        match = _LEFTOVER.fullmatch(leftover.name)
        if match and match.group(1) == out.name and leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{out.name}.", dir=out.parent))
    os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; the export is an ordinary folder
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def written(folder: Path) -> list[str]:
    """Every file under folder, as paths relative to it, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())


def write_manifest(folder: Path, manifest: dict) -> None:
    files = sorted({*written(folder), MANIFEST})
    (Path(folder) / MANIFEST).write_text(json.dumps({"generator": STAMP, **manifest, "files": files}, indent=2,
                                                    ensure_ascii=False) + "\n", encoding="utf-8")


def commit(tmp: Path, out: Path) -> None:
    """Move the finished export in tmp to out: a rename when out does not exist; else the files the earlier
    export's manifest lists are removed (only those: anything else in the folder stays) and the new ones moved
    in, the manifest last."""
    if not out.exists():
        os.replace(tmp, out)
        tmp.mkdir()  # staging() removes it
        return
    old = read_manifest(out)
    for name in (old or {}).get("files", []):
        path = out / name
        if ".." not in Path(name).parts and path.is_file() and not path.is_symlink():
            path.unlink()
            _prune(path.parent, out)
    for name in sorted(written(tmp), key=lambda n: n == MANIFEST):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / name, out / name)


def _prune(folder: Path, top: Path) -> None:
    """Remove folders left empty under top, from folder upwards."""
    while folder != top and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
