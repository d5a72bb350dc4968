"""The root command group, the run option, and how errors and streamed text reach the terminal."""
from __future__ import annotations

import errno
import logging
import sys
import typing
from contextlib import contextmanager

import click

from lstm_textgen import __version__
from lstm_textgen.config import SECTIONS
from lstm_textgen.config.setting import declared
from lstm_textgen.errors import TextgenError
from lstm_textgen.usertext import printable

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@contextmanager
def user_errors(memory_hint: str = "close other programs, or give it less to hold at once"):
    """Turn a user's mistake into one `Error:` line (at the start of a line, control characters escaped) and exit
    1; --debug keeps the traceback. memory_hint: what to lower when memory runs out, in the command's terms."""
    context = click.get_current_context()
    debug = context.find_root().params.get("debug")
    try:
        yield
    except (TextgenError, KeyboardInterrupt, OSError, MemoryError) as e:
        message = _user_message(e, memory_hint)
        if debug or message is None:
            raise
        if context.meta.get("open_line"):  # a streamed text ended mid-line
            click.echo()
        if isinstance(e, KeyboardInterrupt):  # after the terminal's ^C
            click.echo(f"\nError: {message}", err=True)
            sys.exit(130)
        raise click.ClickException(printable(" ".join(message.split("\n")))) from None


def refuse_together(*options: tuple[str, object], why: str) -> None:
    """A usage error (Click's: exit 2) when more than one of the (flag, value) options is given, before anything is
    read or written; a value of None, False or () is not given."""
    given = [flag for flag, value in options if value not in (None, False, ())]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} cannot be used together: {why}")


def _user_message(error: BaseException, memory_hint: str) -> str | None:
    """The one line for an error that is the user's or the machine's, not a bug (None: a bug)."""
    if isinstance(error, TextgenError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, MemoryError):
        return f"out of memory; {memory_hint}"
    # a full disk or a folder that turned read-only is the machine's state, not a bug
    if error.errno in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EPERM):
        where = f" writing {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}; free some space or choose a writable --run"
    return None


def stream(piece: str) -> None:
    """Print a piece of streamed text, remembering whether its line is still open (for an error after it)."""
    click.echo(piece, nl=False)
    if piece:
        click.get_current_context().meta["open_line"] = not piece.endswith("\n")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="lstm-textgen")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(debug):
    """Train an LSTM next-word model on your own text and generate new text from a seed phrase."""
    logger = logging.getLogger("lstm_textgen")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
        logger.setLevel(logging.INFO)


class _StderrHandler(logging.Handler):
    """Library progress messages to whatever sys.stderr is now, above any tqdm bar."""

    def emit(self, record):
        from tqdm import tqdm

        tqdm.write(printable(self.format(record)), file=sys.stderr)


def setting_options(section: str):
    """A Click option for every setting of the config section that declares a flag (config/setting.py), with
    the setting's type and help; its default is None: the run's own value applies."""
    def decorate(f):
        for name, kind, _, rule in reversed(declared(SECTIONS[section])):
            if rule.flag is None:
                continue
            text = f"{rule.help[:1].upper()}{rule.help[1:]} (default: the run's {section}.{name})."
            shape = ({"is_flag": True, "default": None} if kind is bool else
                     {"multiple": True, "metavar": "TEXT"} if typing.get_origin(kind) is list else {"type": kind})
            f = click.option(name, *rule.flag.split("/"), help=text, **shape)(f)
        return f
    return decorate


def run_option(f):
    return click.option("run_dir", "--run", "-r", required=True, metavar="DIR",
                        help="Run directory written by train.")(f)


