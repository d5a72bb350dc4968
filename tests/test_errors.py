"""Every error type the library raises is a TextgenError, which the command line turns into one Error: line
(the message's own line breaks folded) and exit 1; anything else keeps its traceback."""
import click
import pytest
from click.testing import CliRunner

from lstm_textgen import errors
from lstm_textgen.cli.base import user_errors

KINDS = [errors.ConfigError, errors.CorpusError, errors.EmbeddingError, errors.TokenizerError,
         errors.CheckpointError, errors.TrainingError]


def raising(error: BaseException):
    @click.command()
    def command():
        with user_errors():
            raise error
    return command


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_one_error_line(kind):
    assert issubclass(kind, errors.TextgenError)
    result = CliRunner().invoke(raising(kind("what went wrong\nand how to fix it")))
    assert result.exit_code == 1
    assert result.output == "Error: what went wrong and how to fix it\n"


def test_a_bug_keeps_its_traceback():
    result = CliRunner().invoke(raising(ZeroDivisionError("a bug")))
    assert isinstance(result.exception, ZeroDivisionError)
