"""Read a corpus (a file, a folder of text files, or a glob) as normalised text, and split off validation tails."""
from __future__ import annotations

import glob
import os
from pathlib import Path

from lstm_textgen.errors import CorpusError

TEXT_SUFFIXES = (".txt", ".text", ".md")  # what a folder contributes; a named file may have any suffix


def find_files(spec: str) -> list[Path]:
    """The files a corpus spec names, in a stable order."""
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise CorpusError(f"corpus folder {spec} has no text files ({', '.join(TEXT_SUFFIXES)}); "
                              "put your text in .txt files there or name a file")
        return files
    if path.is_file():
        return [path]
    if glob.has_magic(spec):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(spec), recursive=True) if Path(p).is_file())
        if not files:
            raise CorpusError(f"corpus glob '{spec}' matches no files; check the pattern (quote it in the shell)")
        return files
    if path.exists():
        raise CorpusError(f"corpus {spec} is not a regular file or folder")
    raise CorpusError(f"corpus {spec} does not exist; pass a text file, a folder or a glob "
                      "(lstm-textgen train my_corpus.txt)")


def read_text(path: Path) -> str:
    """The file's text as UTF-8 with any BOM dropped and CRLF/CR turned into LF."""
    try:
        data = path.read_bytes()
    except PermissionError:
        raise CorpusError(f"cannot read corpus file {path}: permission denied; check its permissions") from None
    except OSError as e:
        raise CorpusError(f"cannot read corpus file {path}: {e.strerror or e}") from None
    if b"\0" in data[:65536]:
        raise CorpusError(f"corpus file {path} looks binary (it contains NUL bytes); give a plain UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"corpus file {path} is not UTF-8: invalid byte 0x{data[e.start]:02x} at byte offset "
                          f"{e.start}; convert it (e.g. iconv -f latin1 -t utf-8)") from None
    del data
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_corpus(spec: str) -> list[tuple[Path, str]]:
    """Every file of the corpus with its text; refuses a corpus with no text at all."""
    files = find_files(spec)
    texts = [(path, read_text(path)) for path in files]
    if not any(text.strip() for _, text in texts):
        what = f"corpus file {files[0]}" if len(files) == 1 else f"all {len(files)} files of corpus {spec}"
        raise CorpusError(f"{what} holds no text (empty or only whitespace); give a file with text in it")
    return texts


def split_point(n_tokens: int, val_fraction: float) -> int:
    """Where a file's validation tail starts: the last val_fraction of its tokens."""
    return n_tokens - int(round(n_tokens * val_fraction))
