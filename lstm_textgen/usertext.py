"""Text a person hands the program (seeds, prompts, texts to score): refused in one line when it holds bytes that
are not UTF-8, lone surrogates or control characters, and shown safely when a message repeats it (stdlib only).

Python gives a command-line argument's bytes that are not UTF-8 as lone surrogates (U+DC80-U+DCFF, its
surrogateescape error handler), so both arrive here as surrogates. Line ends and tabs are text; every other
control character (C0, DEL, C1: ESC starts a terminal's escape sequences) is refused, so none reaches the model
or is echoed to a terminal.
"""
from __future__ import annotations

import re

from lstm_textgen.errors import TextgenError

_BAD = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # C0 but tab and line ends, DEL, C1, surrogates
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """What makes text unusable ('a byte that is not UTF-8 (0xff) at character 5', 'at line 2, character 1' in a
    text of several lines), or None."""
    text = text.replace("\r", "\n")
    bad = _BAD.search(text)
    if bad is None:
        return None
    ch, start = bad.group(), bad.start()
    line_start = text.rfind("\n", 0, start) + 1
    at = f"character {start - line_start + 1}"
    if "\n" in text:
        at = f"line {text.count(chr(10), 0, start) + 1}, {at}"
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that did not decode, kept by surrogateescape
        return f"a byte that is not UTF-8 (0x{code - 0xDC00:02x}) at {at}"
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X}) at {at}, which is not a character"
    name = {0x1B: "ESC, which starts a terminal escape sequence", 0x00: "NUL", 0x7F: "DEL"}.get(code, "")
    return f"a control character (U+{code:04X}{', ' + name if name else ''}) at {at}"


def check_text(text: str, what: str) -> str:
    """text with its line ends made \\n (CRLF and CR, as corpora are read), or a TextgenError naming `what` (the
    flag or field the person used) and the first character that cannot be used."""
    problem = text_problem(text)
    if problem is not None:
        raise TextgenError(f"{what} holds {problem}; give plain UTF-8 text (line ends and tabs are fine, other "
                           "control characters are not)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_text(data: bytes, what: str) -> str:
    """UTF-8 bytes (a BOM dropped) as checked text, or a TextgenError naming `what`, the line and the byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TextgenError(f"{what} is not UTF-8: invalid byte 0x{data[e.start]:02x} on line {line} (byte offset "
                           f"{e.start}); convert it (e.g. iconv -f latin1 -t utf-8)") from None
    return check_text(text, what)


def printable(text: str) -> str:
    """text safe to print on a terminal: control characters (but line ends and tabs) and surrogates escaped as
    Python writes them (\\x1b, \\udcff), so an error message never sends an escape sequence or fails to print."""
    return _CONTROL_OR_SURROGATE.sub(_escaped, text)


def _escaped(match: re.Match) -> str:
    ch = match.group()
    return ch if ch in "\n\t" else ascii(ch)[1:-1]
