"""Read a corpus (a file, a folder of text files, or a glob) as normalised text, and split off validation tails."""
from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
from pathlib import Path
from shlex import quote
from typing import Iterator

from lstm_textgen.errors import CorpusError

TEXT_SUFFIXES = (".txt", ".text", ".md")  # what a folder contributes; a named file may have any suffix
CHUNK_BYTES = 8 << 20  # read_chunks' piece size: big corpora are tokenized a piece at a time


def find_files(spec: str, what: str = "corpus") -> list[Path]:
    """The files a corpus spec names, in a stable order; `what` names the spec in errors as the person gave it
    (corpus, data.val_corpus, evaluation text)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise CorpusError(f"{what} folder {spec} has no text files ({', '.join(TEXT_SUFFIXES)}); "
                              "put your text in .txt files there or name a file")
        return files
    if path.is_file():
        return [path]
    if glob.has_magic(spec):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(spec), recursive=True) if Path(p).is_file())
        if not files:
            raise CorpusError(f"{what} glob '{spec}' matches no files; check the pattern (quote it in the shell)")
        return files
    if path.exists():
        raise CorpusError(f"{what} {spec} is not a regular file or folder")
    example = "(lstm-textgen train my_corpus.txt)" if what == "corpus" else ""
    raise CorpusError(f"{what} {spec} does not exist; pass a text file, a folder or a glob {example}".rstrip())


def corpus_reads(spec: str, path: Path) -> str | None:
    """Why the corpus spec would read a file written at path, or None: path is inside a corpus folder, or a
    corpus glob names it (a glob with ** reads any depth below its fixed folder)."""
    spec_path, target = Path(spec).expanduser(), Path(path).resolve()
    if spec_path.is_dir():
        return f"is inside the corpus folder {spec}" if spec_path.resolve() in target.parents else None
    if not glob.has_magic(spec) or spec_path.is_file():
        return None
    magic = next(i for i, part in enumerate(spec_path.parts) if glob.has_magic(part))
    fixed = Path(*spec_path.parts[:magic]) if magic else Path(".")
    if fixed.resolve() not in target.parents:
        return None
    names = Path(os.path.relpath(target, fixed.resolve())).parts
    parts = spec_path.parts[magic:]
    if "**" in spec or (len(names) == len(parts) and all(fnmatch.fnmatchcase(n, p) for n, p in zip(names, parts))):
        return f"is where the corpus glob '{spec}' reads"
    return None


def read_text(path: Path, what: str = "corpus") -> str:
    """The file's text as UTF-8 with any BOM dropped and CRLF/CR turned into LF."""
    with _reading(path, what):
        data = path.read_bytes()
    _check_not_binary(path, data, what)
    text = _decode(path, data, 0, "utf-8-sig", what)
    del data
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES, what: str = "corpus") -> Iterator[tuple[str, int]]:
    """read_text(path) in pieces of about chunk_bytes, as (text, bytes read); joined, they equal read_text.

    Each piece ends just after a newline (else a space), so no token and no CRLF pair is cut in two;
    errors name the byte offset in the file, as read_text does.
    """
    with _reading(path, what):
        file = open(path, "rb")
    with file:
        offset, rest = 0, b""
        while True:
            with _reading(path, what):
                block = file.read(chunk_bytes)
            data = rest + block
            end = len(data)
            if offset == 0:  # data starts at the file's start
                _check_not_binary(path, data, what)
            if block:  # cut after the last newline, else the last space, else before a UTF-8 lead byte
                end = data.rfind(b"\n") + 1 or data.rfind(b" ") + 1 or _char_start(data)
                if end == 0:  # no place to cut in this piece: read on
                    rest = data
                    continue
            piece, rest = data[:end], data[end:]
            if piece:
                text = _decode(path, piece, offset, "utf-8-sig" if offset == 0 else "utf-8", what)
                yield text.replace("\r\n", "\n").replace("\r", "\n"), len(piece)
            offset += len(piece)
            if not block:
                return


def _char_start(data: bytes) -> int:
    """The last index in data where a UTF-8 character starts (0 if none)."""
    for i in range(len(data) - 1, max(len(data) - 5, 0), -1):
        if data[i] & 0xC0 != 0x80:
            return i
    return 0


@contextlib.contextmanager
def _reading(path: Path, what: str):
    try:
        yield
    except PermissionError:
        raise CorpusError(f"cannot read {what} file {path}: permission denied; check its permissions") from None
    except OSError as e:
        raise CorpusError(f"cannot read {what} file {path}: {e.strerror or e}") from None


def _check_not_binary(path: Path, head: bytes, what: str) -> None:
    encoding = _wide_encoding(head)
    if encoding:
        raise CorpusError(f"{what} file {path} is {encoding} text, not UTF-8; convert it, e.g. iconv -f {encoding} "
                          f"-t utf-8 {quote(str(path))} > {quote(Path(path).stem + '.utf8.txt')}")
    if b"\0" in head[:65536]:
        raise CorpusError(f"{what} file {path} looks binary (it contains NUL bytes); give a plain UTF-8 text file")


def _wide_encoding(head: bytes) -> str | None:
    """'UTF-16' or 'UTF-32' when the bytes are text in one of them (by the byte-order mark, or by NUL bytes
    at every other position of mostly ASCII text), else None."""
    if head.startswith((b"\xff\xfe\0\0", b"\0\0\xfe\xff")):
        return "UTF-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    sample = head[:4096]
    if len(sample) >= 16:
        for zeros, chars in ((sample[1::2], sample[0::2]), (sample[0::2], sample[1::2])):
            text = sum(32 <= c < 127 or c in b"\t\n\r" for c in chars)
            if zeros.count(0) > 0.9 * len(zeros) and text > 0.9 * len(chars):
                return "UTF-16"
    return None


def _decode(path: Path, data: bytes, offset: int, encoding: str, what: str) -> str:
    """data (found at byte offset in the file) as text; a bad byte is named by its offset in the file."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise CorpusError(f"{what} file {path} is not UTF-8: invalid byte 0x{data[e.start]:02x} at byte offset "
                          f"{offset + e.start}; convert it (e.g. iconv -f latin1 -t utf-8)") from None


def no_text_error(spec: str, files: list[Path], what: str = "corpus") -> CorpusError:
    which = f"{what} file {files[0]}" if len(files) == 1 else f"all {len(files)} files of {what} {spec}"
    return CorpusError(f"{which} holds no text (empty or only whitespace); give a file with text in it")


def split_point(n_tokens: int, val_fraction: float) -> int:
    """Where a file's validation tail starts: the last val_fraction of its tokens."""
    return n_tokens - int(round(n_tokens * val_fraction))
