"""Pretrained word vector files read in one streaming pass that keeps only the rows of vocabulary words:
GloVe text, word2vec/fastText `.vec` text (header line `N DIM`) and word2vec binary, gzip-compressed or not
(numpy and tqdm only)."""
from __future__ import annotations

import gzip
import zlib
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from lstm_textgen.errors import EmbeddingError
from lstm_textgen.text.tokenizer import PAD_ID, UNK_ID, Tokenizer

CHUNK = 1 << 20  # bytes read at a time: peak memory is about a chunk plus the vocabulary's rows
HEAD = 1 << 16  # bytes looked at to tell the format (more, up to HEAD_MAX, if its lines are longer)
HEAD_MAX = 1 << 24
GZIP_MAGIC = b"\x1f\x8b"
OTHER_ARCHIVES = {b"PK\x03\x04": "a zip archive", b"BZh": "bzip2-compressed", b"\xfd7zXZ\x00": "xz-compressed"}
_TEXT_BYTES = frozenset(range(32, 127)) | frozenset(b"\t\r\n")  # float32 bytes of real vectors never all are


class Rows:
    """The matrix being filled: a vocabulary word takes its exact entry, else its lower-cased form's."""

    def __init__(self, tokenizer: Tokenizer, dim: int):
        words = {i: w for i, w in enumerate(tokenizer.vocab) if i not in (PAD_ID, UNK_ID)}
        self.matrix = np.zeros((tokenizer.vocab_size, dim), np.float32)
        self.match = np.zeros(tokenizer.vocab_size, np.int8)  # 0 not found, 1 by lower-cased form, 2 exact
        self.exact = {w.encode("utf-8"): i for i, w in words.items()}
        self.folded: dict[bytes, list[int]] = {}
        if not tokenizer.lowercase:  # "The" falls back to "the"; a lower-casing tokenizer has no "The"
            for i, w in words.items():
                if w.lower() != w:
                    self.folded.setdefault(w.lower().encode("utf-8"), []).append(i)
        self.wanted = self.exact.keys() | self.folded.keys()
        self.taken: set[bytes] = set()  # vocabulary entries already read: a repeat is a duplicate

    def put(self, word: bytes, vector: np.ndarray) -> bool:
        """Store vector for every row that wants word; False (nothing stored) for a duplicate entry."""
        if word in self.taken:
            return False
        self.taken.add(word)
        i = self.exact.get(word)
        if i is not None:
            self.matrix[i], self.match[i] = vector, 2
        for j in self.folded.get(word, ()):
            if self.match[j] < 2:
                self.matrix[j], self.match[j] = vector, 1
        return True


class Reading:
    """What one pass over the file found besides the rows: counts of vectors, bad lines and duplicates."""

    def __init__(self, path: str, kind: str, dim: int, header: bool, gzipped: bool):
        self.path, self.kind, self.dim = path, kind, dim
        name = "word2vec binary" if kind == "binary" else "word2vec/fastText text" if header else "GloVe text"
        self.format = name + (", gzip" if gzipped else "")
        self.words = self.skipped = self.duplicates = 0
        self.first_skipped: int | None = None  # line (text) or record (binary) number

    def skip(self, where: int) -> None:
        self.skipped += 1
        self.first_skipped = self.first_skipped or where

    def take(self, rows: Rows, word: bytes, vector: np.ndarray | None, where: int) -> None:
        """Count one entry for a vocabulary word: a vector, a malformed line or a duplicate."""
        if vector is None:
            self.skip(where)
            return
        self.words += 1
        if not rows.put(word, vector):
            self.duplicates += 1


def read_vectors(path_spec: str, dim: int, tokenizer: Tokenizer) -> tuple[Rows, Reading]:
    """The rows of the vocabulary's words found in the file (exact entries first, then lower-cased ones),
    and what the pass found besides; refuses a file of another dimension, an empty or a ragged one."""
    path = Path(path_spec).expanduser()
    with _open(path, path_spec) as (raw, stream, gzipped):
        head, chunks = _read_head(stream, path_spec)
        kind, file_dim, header = _detect(head, path_spec)
        if file_dim != dim:
            raise EmbeddingError(f"embedding.dim is {dim} but {path_spec} has {file_dim}-dimensional "
                                 f"vectors; set --set embedding.dim={file_dim}")
        reading, rows = Reading(path_spec, kind, dim, header, gzipped), Rows(tokenizer, dim)
        with tqdm(total=path.stat().st_size, desc=f"reading {path.name}", unit="B", unit_scale=True,
                  unit_divisor=1024, leave=False, disable=None) as bar:  # disable=None: bars on a terminal only
            def progress() -> Iterator[bytes]:  # the head first, then the rest of the file
                bar.update(raw.tell())
                yield head
                for chunk in chunks:
                    bar.update(raw.tell() - bar.n)
                    yield chunk

            read = _read_binary if kind == "binary" else _read_text
            try:
                read(progress(), rows, reading, header)
            except (OSError, EOFError, zlib.error) as e:
                raise _unreadable(path_spec, e) from None
    if reading.words == 0:
        raise EmbeddingError(f"{path_spec} holds no word vectors ({reading.skipped:,} malformed lines); "
                             "give a GloVe, word2vec or fastText vector file")
    if reading.skipped > reading.words:  # more broken than whole: not a file to trust row by row
        raise EmbeddingError(f"{path_spec} is ragged: {reading.skipped:,} of the vocabulary's "
                             f"{reading.skipped + reading.words:,} entries lack {dim} numbers (first at line "
                             f"{reading.first_skipped}); repair the file or use another one")
    return rows, reading


@contextmanager
def _open(path: Path, name: str):
    """Yield (raw file, decompressed byte stream, gzipped?) with every open failure as an EmbeddingError."""
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise EmbeddingError(f"embedding.path {name} does not exist; check the path, or set "
                             "--set embedding.path=null to learn the embedding from scratch") from None
    except IsADirectoryError:
        raise EmbeddingError(f"embedding.path {name} is a folder; point it at one vector file "
                             "such as glove.6B.100d.txt") from None
    except OSError as e:
        raise EmbeddingError(f"cannot read embedding.path {name}: {e.strerror or e}; "
                             "check the file's permissions") from None
    with raw:
        try:
            magic = raw.read(6)
            raw.seek(0)
        except OSError as e:
            raise EmbeddingError(f"cannot read embedding.path {name}: {e.strerror or e}") from None
        for start, what in OTHER_ARCHIVES.items():
            if magic.startswith(start):
                raise EmbeddingError(f"{name} is {what}; unpack it and point embedding.path at the vector "
                                     "file inside (glove.6B.zip holds glove.6B.50d.txt ... 300d.txt), "
                                     "or compress it with gzip")
        gzipped = magic.startswith(GZIP_MAGIC)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        yield raw, stream, gzipped


def _read_head(stream, name: str) -> tuple[bytes, Iterator[bytes]]:
    """The file's first bytes (a few whole lines, BOM dropped) and an iterator over the rest, a chunk at a time."""
    def rest() -> Iterator[bytes]:
        while chunk := stream.read(CHUNK):
            yield chunk

    chunks = rest()
    head = b""
    try:
        for chunk in chunks:
            head += chunk
            if len(head) >= HEAD and (head.count(b"\n") >= 3 or len(head) >= HEAD_MAX):
                break
    except (OSError, EOFError, zlib.error) as e:
        raise _unreadable(name, e) from None
    return head.removeprefix(b"\xef\xbb\xbf"), chunks


def _unreadable(name: str, e: Exception) -> EmbeddingError:
    return EmbeddingError(f"cannot read {name}: {getattr(e, 'strerror', None) or e}; the file is truncated or "
                          "corrupt: download it again")


def _is_number(field: bytes) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _detect(head: bytes, name: str) -> tuple[str, int, bool]:
    """(kind "text" or "binary", dimension, has a `N DIM` header line) from the file's first bytes."""
    lines = head.split(b"\n")
    if len(head) >= HEAD and len(lines) > 1:
        lines.pop()  # the last line may be cut off
    first = lines[0].split()
    if len(first) == 2 and all(f.isdigit() for f in first) and int(first[1]) > 0:
        dim = int(first[1])
        body = head[len(lines[0]) + 1:].lstrip(b"\n")
        start = body.find(b" ") + 1
        window = body[start:start + 4 * dim] if start else b""  # where the first word's values are
        line = window.split(b"\n")[0] or window  # text values end at a newline; float32 bytes may hold one
        if any(b not in _TEXT_BYTES for b in line):
            return "binary", dim, True
        data = [(number, len(line.split()) - 1) for number, line in enumerate(lines[1:], start=2) if line.strip()]
        bad = [(number, n) for number, n in data if n != dim]
        if len(bad) * 2 > len(data):  # most lines disagree with the header: no line would be read
            number, n = bad[0]
            raise EmbeddingError(f"{name} line {number} has {n} values but its header (line 1) says {dim}; "
                                 "the file is damaged or not a vector file: download it again")
        return "text", dim, True
    shapes = Counter(len(line.split()) for line in lines if line.strip())
    if not shapes:
        raise EmbeddingError(f"{name} holds no word vectors (it is empty); give a GloVe, word2vec or "
                             "fastText vector file")
    n_fields = shapes.most_common(1)[0][0]  # the usual line length, so one bad first line is just skipped
    sample = next(line.split() for line in lines if len(line.split()) == n_fields)
    if n_fields < 2 or not all(_is_number(f) for f in sample[1:]):
        start = lines[0][:40].decode("utf-8", "replace")
        raise EmbeddingError(f"{name} is neither a text vector file (GloVe, word2vec/fastText .vec) nor word2vec "
                             f"binary: line 1 starts {start!r}; give one of those, gzip-compressed or not")
    return "text", n_fields - 1, False


def _vector(fields: list[bytes]) -> np.ndarray | None:
    """The values as float32, or None if one is not a finite number."""
    try:
        vector = np.array([float(f) for f in fields], np.float32)
    except ValueError:
        return None
    return vector if np.isfinite(vector).all() else None


def _read_text(chunks: Iterator[bytes], rows: Rows, reading: Reading, header: bool) -> None:
    """Stream `word v1 ... vDIM` lines; a line with another number of values is skipped and counted."""
    dim, wanted = reading.dim, rows.wanted
    number = 0
    for lines in _lines(chunks):
        for line in lines:
            number += 1
            line = line.rstrip()  # "\r" and fastText's trailing space
            if not line or (number == 1 and header):
                continue
            if line.count(b" ") == dim:  # the usual single-spaced line: look at the word only
                word = line[:line.find(b" ")]
                if word in wanted:
                    reading.take(rows, word, _vector(line.split(b" ")[1:]), number)
                else:
                    reading.words += 1
                continue
            fields = line.split()  # tabs, runs of spaces, or a wrong number of values
            if len(fields) != dim + 1:  # also entries whose word has a space (glove.840B): no token has one
                reading.skip(number)
            elif fields[0] in wanted:
                reading.take(rows, fields[0], _vector(fields[1:]), number)
            else:
                reading.words += 1


def _lines(chunks: Iterator[bytes]) -> Iterator[list[bytes]]:
    """Whole lines, a chunk's worth at a time."""
    carry = b""
    for chunk in chunks:
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        yield lines
    if carry:
        yield [carry]


def _read_binary(chunks: Iterator[bytes], rows: Rows, reading: Reading, header: bool) -> None:
    """Stream word2vec binary: a `N DIM` line, then per word its bytes, a space and DIM little-endian float32."""
    size, wanted, name = 4 * reading.dim, rows.wanted, reading.path
    buf = next(chunks, b"")
    pos = buf.find(b"\n") + 1  # past the header line
    record = 0

    def more() -> bool:  # append the next chunk, dropping what has been read
        nonlocal buf, pos
        chunk = next(chunks, None)
        if chunk is None:
            return False
        buf, pos = buf[pos:] + chunk, 0
        return True

    while True:
        while True:  # word2vec.c writes a newline after each vector; gensim does not
            while pos < len(buf) and buf[pos] in b"\n\r":
                pos += 1
            if pos < len(buf) or not more():
                break
        if pos >= len(buf):
            return
        record += 1
        space = buf.find(b" ", pos)
        while space < 0 or len(buf) - space - 1 < size:
            if space < 0 and len(buf) - pos > HEAD_MAX:
                raise EmbeddingError(f"{name} record {record:,} has no space after its word in "
                                     f"{HEAD_MAX:,} bytes; the file is not word2vec binary")
            if not more():
                word = buf[pos:space if space >= 0 else pos + 40].decode("utf-8", "replace")
                raise EmbeddingError(f"{name} ends inside record {record:,} ({word!r}); the file is truncated: "
                                     "download it again")
            space = buf.find(b" ", pos)
        word, start, pos = buf[pos:space], space + 1, space + 1 + size
        if word in wanted:
            vector = np.frombuffer(buf, "<f4", reading.dim, start).astype(np.float32)
            reading.take(rows, word, vector if np.isfinite(vector).all() else None, record)
        else:
            reading.words += 1
