"""Every door that takes text, at every level: a seed (--seed, --seeds-file, --interactive), suggest's TEXT, an
evaluation file, inspect's TEXT (a string or a file), and the HTTP prompt and texts (suggest's, inspect's). Bytes that are not UTF-8, a lone surrogate, control characters (an
escape sequence), an empty text and one of only unknown words each get one clear error (HTTP: a 400 in OpenAI's
shape, the server serving on), never a traceback or a 500, are never echoed raw, and change nothing on disk.

The bpe level knows every byte, so text of words it never saw is no error there: it generates."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli

from conftest import TINY_TEXT
from helpers import check_one_error, running_server, snapshot

LEVELS = ("word", "whitespace", "char", "bpe")
UNKNOWN = {"word": "zebra giraffe", "whitespace": "zebra giraffe", "char": "世界", "bpe": "zebra giraffe"}
# What each kind of bad text is, as it reaches the program: through the command line (Python hands undecodable
# bytes over as U+DC80-U+DCFF), in a file's bytes, and in an HTTP body's bytes.
KINDS = {
    "invalid bytes": (os.fsdecode(b"the \xff cat"), b"the \xff cat", b'"the \xff cat"'),
    "lone surrogate": ("the \ud800 cat", b"the \xed\xa0\x80 cat", b'"the \\ud800 cat"'),
    "control characters": ("the \x1b[31mcat", b"the \x1b[31mcat", b'"the \\u001b[31mcat"'),
    "empty": ("", b"", b'""'),
    "only unknown words": (None, None, None),  # the level's UNKNOWN
}
# What the one error line says for each kind (any of the phrases)
SAYS = {
    "invalid bytes": ("not UTF-8",),
    "lone surrogate": ("lone surrogate", "not UTF-8"),
    "control characters": ("control character (U+001B, ESC",),
    "empty": ("is empty", "has no seed phrases", "fewer than one window"),
    "only unknown words": ("in the model's vocabulary", "in the run's vocabulary"),
}
RAW = ("\x1b", "\ud800", "\udcff", "\xff")  # what must never reach the terminal as it is


def text_of(kind: str, level: str, form: int):
    given = KINDS[kind][form]
    if given is not None:
        return given
    text = UNKNOWN[level]
    return text if form == 0 else text.encode() if form == 1 else json.dumps(text).encode()


def file_of(root: Path, data: bytes, before: str = "") -> Path:
    """A file holding data after the text before (evaluate's: good text, then the bad part, enough for a window)."""
    path = root / "text.txt"
    path.write_bytes(before.encode() + data * (30 if before else 1))
    return path


def evaluated(kind: str, level: str) -> bytes | str:
    """evaluate's text: an empty file, only the unknown words, or good text with the bad part after it."""
    if kind in ("empty", "only unknown words"):
        return text_of(kind, level, 1) * 30, ""
    return text_of(kind, level, 1), TINY_TEXT


DOORS = {
    "generate --seed": lambda run, root, kind, level: [
        "generate", "--run", run, "--seed", text_of(kind, level, 0), "-n", "3", "--random-seed", "1"],
    "generate --seeds-file": lambda run, root, kind, level: [
        "generate", "--run", run, "--seeds-file", file_of(root, text_of(kind, level, 1)), "-n", "3",
        "--random-seed", "1"],
    "generate --interactive": lambda run, root, kind, level: [
        "generate", "--run", run, "--seed", text_of(kind, level, 0), "--interactive", "-n", "1"],
    "suggest": lambda run, root, kind, level: ["suggest", "--run", run, text_of(kind, level, 0)],
    "evaluate": lambda run, root, kind, level: ["evaluate", "--run", run, file_of(root, *evaluated(kind, level))],
    "inspect TEXT": lambda run, root, kind, level: ["inspect", "--run", run, text_of(kind, level, 0), "--json"],
    "inspect FILE": lambda run, root, kind, level: ["inspect", "--run", run, file_of(root, text_of(kind, level, 1)),
                                                    "--json"],
}
CASES = [(door, level, kind) for door in DOORS for level in LEVELS for kind in KINDS]


@pytest.fixture(scope="module")
def runs(level_runs, tmp_path_factory):
    """The four levels' runs, each in a folder named by its level (the API's model names)."""
    folder = tmp_path_factory.mktemp("doors")
    for level, run in level_runs.items():
        shutil.copytree(run, folder / level)
    return {level: folder / level for level in LEVELS}


def never_raw(output: str) -> None:
    assert not any(ch in output for ch in RAW), repr(output)


@pytest.mark.parametrize("door, level, kind", CASES, ids=[f"{d} {l} {k}" for d, l, k in CASES])
def test_bad_text_at_every_command_line_door(runs, tmp_path, door, level, kind):
    args = [str(a) if isinstance(a, Path) else a for a in DOORS[door](runs[level], tmp_path, kind, level)]
    before = snapshot(runs[level].parent), snapshot(tmp_path)
    result = CliRunner().invoke(cli, args, input="q\n")
    if kind == "only unknown words" and level == "bpe":  # every byte is a token: it generates
        assert result.exit_code == 0, result.output
        return
    check_one_error(result, "")
    error = next(line for line in result.output.splitlines() if line.startswith("Error: "))
    assert any(phrase in error for phrase in SAYS[kind]), error
    never_raw(result.output)
    assert (snapshot(runs[level].parent), snapshot(tmp_path)) == before


@pytest.fixture(scope="module")
def server(runs):
    with running_server([runs[level] for level in LEVELS]) as (url, _):
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


HTTP = {
    "POST /v1/completions prompt": ("/v1/completions", b'{"model": "%s", "max_tokens": 3, "prompt": %s}'),
    "POST /v1/suggest text": ("/v1/suggest", b'{"model": "%s", "text": %s}'),
    "POST /v1/inspect text": ("/v1/inspect", b'{"model": "%s", "text": %s}'),
}
HTTP_CASES = [(door, level, kind) for door in HTTP for level in LEVELS for kind in KINDS]


@pytest.mark.parametrize("door, level, kind", HTTP_CASES, ids=[f"{d} {l} {k}" for d, l, k in HTTP_CASES])
def test_bad_text_at_every_http_door(server, door, level, kind):
    path, body = HTTP[door]
    response = server.post(path, content=body % (level.encode(), text_of(kind, level, 2)),
                           headers={"content-type": "application/json"})
    if kind == "only unknown words" and level == "bpe":
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] in (None, "prompt", "text"), error
        assert any(phrase.replace("seed phrases", "") in error["message"] for phrase in SAYS[kind]
                   + ("send some text",)), error
        never_raw(response.text)
    assert server.post("/v1/completions", json={"model": level, "prompt": "the cat", "max_tokens": 2}).status_code == 200


def test_a_bad_word_typed_in_an_interactive_session_is_refused_and_the_session_goes_on(runs):
    result = CliRunner().invoke(cli, ["generate", "--run", str(runs["word"]), "--seed", "the cat", "-i", "-n", "2"],
                                input="\x1b[2Jcat\n1\nq\n")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "holds a control character (U+001B" in line]
    assert len(warnings) == 1 and "\\x1b[2Jcat" in warnings[0]
    never_raw(result.output.replace("> \x1b[2Jcat\n", "> ", 1))  # CliRunner echoes what is typed, as a terminal does
    typed_bytes = CliRunner().invoke(cli, ["generate", "--run", str(runs["word"]), "--seed", "the", "-i"],
                                     input=b"the \xff cat\n")
    check_one_error(typed_bytes, "what you typed is not UTF-8")


def test_the_tables_cover_every_door_level_and_kind():
    assert {level for _, level, _ in CASES + HTTP_CASES} == set(LEVELS)
    assert {kind for _, _, kind in CASES + HTTP_CASES} == set(KINDS)
    assert len(CASES) + len(HTTP_CASES) == (len(DOORS) + len(HTTP)) * len(LEVELS) * len(KINDS) == 200


def test_a_real_command_line_with_bytes_that_are_not_utf8(runs):
    """The bytes as a shell passes them, to the installed command: one error line, nothing echoed raw."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "lstm_textgen", "generate", "--run", str(runs["bpe"]).encode(), "--seed",
               b"the \xff\x1b cat"]
    result = subprocess.run(command, capture_output=True, timeout=120)
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert result.stderr.startswith(b"Error: --seed holds a byte that is not UTF-8 (0xff)") and b"\x1b" not in result.stderr
