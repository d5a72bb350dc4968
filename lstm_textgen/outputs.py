"""Files the program writes outside a run folder (a plot now; pages and exports alike): each carries a stamp in its
own format's metadata, and an existing target is replaced only when it carries that stamp, or when the person
says --force. A folder at the target, or a file where a folder of its path must be, is refused in one line."""
from __future__ import annotations

import re
from pathlib import Path

from lstm_textgen import __version__
from lstm_textgen.errors import TextgenError

STAMP = f"lstm-textgen {__version__}"
_STAMP_RE = rb"lstm-textgen \d"  # any version's
# suffix -> (the metadata matplotlib's savefig writes the stamp with, how to find it, where: bytes from the start,
# or from the end when negative)
FORMATS = {
    ".png": ({"Software": STAMP}, re.compile(rb"tEXtSoftware\x00" + _STAMP_RE), 4096),  # a tEXt chunk before IDAT
    ".svg": ({"Creator": STAMP}, re.compile(rb"<dc:creator>\s*<cc:Agent>\s*<dc:title>" + _STAMP_RE), 8192),
    ".pdf": ({"Creator": STAMP}, re.compile(rb"/Creator \(" + _STAMP_RE), -65536),  # the Info dictionary, at the end
    ".html": ({}, re.compile(rb'<meta name="generator" content="' + _STAMP_RE), 8192),
}


def metadata(path: Path) -> dict:
    """The metadata that stamps a file of path's kind as the program's (savefig(metadata=...))."""
    return dict(FORMATS[Path(path).suffix.lower()][0])


def written_here(path: Path) -> bool:
    """Whether the file at path carries the program's stamp (so replacing it loses nothing of the person's)."""
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None or path.is_symlink() or not path.is_file():
        return False
    _, pattern, region = kind
    try:
        with open(path, "rb") as f:
            if region < 0:
                f.seek(max(path.stat().st_size + region, 0))
            data = f.read(abs(region))
    except OSError:
        return False
    return pattern.search(data) is not None


def check_target(path: Path, force: bool, flag: str = "-o") -> None:
    """Refuse, before anything is made, a target that is a folder, that sits under a file, or that is a file the
    program did not write (unless force): each in one line naming it, and what to do."""
    path = Path(path)
    if path.is_dir():
        raise TextgenError(f"{path} is a folder; give the file a name inside it, e.g. {flag} {path / 'curves.png'}")
    above = next((parent for parent in path.parents if parent.exists() or parent.is_symlink()), None)
    if above is not None and not above.is_dir():
        raise TextgenError(f"cannot write {path}: {above} is a file, not a folder; choose another {flag}")
    if (path.exists() or path.is_symlink()) and not force and not written_here(path):
        raise TextgenError(f"{path} exists and lstm-textgen did not write it; choose another {flag}, or pass "
                           "--force to replace it")
