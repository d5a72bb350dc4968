"""Corpus reading: files, folders, globs, normalisation, and one-line errors for bad input."""
import os

import pytest

from lstm_textgen.config import DataConfig
from lstm_textgen.text.corpus import find_files, read_chunks, read_text, split_point
from lstm_textgen.text.tokens import tokenize_corpus
from lstm_textgen.errors import CorpusError


def test_file_folder_and_glob(tmp_path):
    (tmp_path / "books").mkdir()
    for name in ("b.txt", "a.txt", "skip.bin"):
        (tmp_path / "books" / name).write_text("hello")
    assert [p.name for p in find_files(str(tmp_path / "books"))] == ["a.txt", "b.txt"]
    assert [p.name for p in find_files(str(tmp_path / "books" / "*.txt"))] == ["a.txt", "b.txt"]
    assert [p.name for p in find_files(str(tmp_path / "books" / "skip.bin"))] == ["skip.bin"]


def test_text_is_normalised(tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\rthree\n")
    assert read_text(path) == "one\ntwo\nthree\n"


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.txt", "does not exist"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "has no text files"),
    (lambda d: d / "*.nothing", "matches no files"),
])
def test_missing_inputs(tmp_path, make, message):
    with pytest.raises(CorpusError, match=message):
        read_corpus(make(tmp_path))


def test_not_utf8_names_the_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"not UTF-8: invalid byte 0xe9 at byte offset 3"):
        read_corpus(path)


def test_binary_file(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(CorpusError, match="looks binary"):
        read_corpus(path)


@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_empty_and_whitespace_corpora(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content)
    with pytest.raises(CorpusError, match="holds no text"):
        read_corpus(path)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("text")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads whatever the mode: make the open fail as it would for a user
        def refuse(name, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(name))
        monkeypatch.setattr("lstm_textgen.text.corpus.open", refuse, raising=False)
    with pytest.raises(CorpusError, match="permission denied"):
        read_corpus(path)


def read_corpus(path):
    """Read and tokenize a corpus the way train does (every corpus error comes from here)."""
    return tokenize_corpus(DataConfig(corpus=str(path)))


def test_split_point_takes_the_tail():
    assert split_point(100, 0.1) == 90
    assert split_point(15, 0.2) == 12


MIXED = ("\ufeffFirst line, with “quotes” and 'apostrophes' — don't.\r\n"
         "Second\rthird line: naïve café, ΟΔΟΣ; \"quoted\" (brackets)\n" * 7 + "no newline at the end")


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 1 << 20])
def test_read_chunks_joined_equal_read_text(tmp_path, chunk_bytes):
    path = tmp_path / "mixed.txt"
    path.write_bytes(MIXED.encode("utf-8"))
    chunks = list(read_chunks(path, chunk_bytes))
    assert "".join(text for text, _ in chunks) == read_text(path)
    assert sum(size for _, size in chunks) == path.stat().st_size
    if chunk_bytes == 64:
        assert len(chunks) > 5 and all(text.endswith(("\n", " ")) for text, _ in chunks[:-1])


def test_read_chunks_names_the_byte_offset_in_the_file(tmp_path):
    path = tmp_path / "late.txt"
    path.write_bytes(b"plain ascii line\n" * 100 + "caf\u00e9".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"invalid byte 0xe9 at byte offset 1703;"):
        list(read_chunks(path, 64))
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x00\x01" * 100)
    with pytest.raises(CorpusError, match="looks binary"):
        list(read_chunks(binary, 16))
