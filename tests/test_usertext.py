"""Text a person hands the program: what is refused (bytes that are not UTF-8, lone surrogates, control
characters), how it is named, and how a message that repeats it is made safe to print."""
import os
import re

import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.errors import TextgenError
from lstm_textgen.usertext import check_text, decode_text, printable, text_problem


@pytest.mark.parametrize("text, problem", [
    (os.fsdecode(b"caf\xe9"), "a byte that is not UTF-8 (0xe9) at character 4"),
    ("a \ud800 b", "a lone surrogate (U+D800) at character 3, which is not a character"),
    ("\x1b[31mred", "a control character (U+001B, ESC, which starts a terminal escape sequence) at character 1"),
    ("nul\x00", "a control character (U+0000, NUL) at character 4"),
    ("one\ntwo \x07", "a control character (U+0007) at line 2, character 5"),
    ("c1 \x85", "a control character (U+0085) at character 4"),
    ("del\x7f", "a control character (U+007F, DEL) at character 4"),
])
def test_what_is_refused_and_where(text, problem):
    assert text_problem(text) == problem
    with pytest.raises(TextgenError, match="^" + re.escape(f"--seed holds {problem}; give plain UTF-8 text")):
        check_text(text, "--seed")


@pytest.mark.parametrize("text", ["", "plain", "tabs\tand\nlines\n", "café 世界 🐕 «»", "\u2028 \u00a0", "a\rb"])
def test_plain_text_passes_with_line_ends_made_newlines(text):
    assert text_problem(text) is None
    assert check_text(text, "x") == text.replace("\r", "\n")


def test_bytes_are_decoded_strictly_naming_the_line():
    assert decode_text("\ufeffone\r\ntwo".encode(), "f") == "one\ntwo"
    with pytest.raises(TextgenError, match=r"^f is not UTF-8: invalid byte 0xff on line 2 \(byte offset 4\)"):
        decode_text(b"one\n\xfftwo", "f")
    with pytest.raises(TextgenError, match=r"^f holds a control character \(U\+001B"):
        decode_text(b"one\n\x1btwo", "f")


def test_printable_escapes_what_a_terminal_would_act_on():
    assert printable("a\x1b[2Jb\tc\nd \udcff \x9b") == "a\\x1b[2Jb\tc\nd \\udcff \\x9b"


def test_an_error_that_names_a_path_never_sends_its_control_characters(tmp_path):
    result = CliRunner().invoke(cli, ["generate", "--run", str(tmp_path / "run\x1b[2J"), "--seed", "the"])
    assert result.exit_code == 1 and "\x1b" not in result.output
    assert result.output.startswith("Error: run directory ") and "run\\x1b[2J does not exist" in result.output
