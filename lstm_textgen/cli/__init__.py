"""The command line: Click commands that parse, call the library and print (one module per group of commands).

Keras and TensorFlow are imported inside the commands that need them, so --help and config errors return at
once. Nothing in the library imports this package.
"""
from lstm_textgen.cli import export, generate, report, serve, train  # each module adds its commands to cli
from lstm_textgen.cli.base import cli  # the entry point: lstm-textgen = lstm_textgen.cli:cli

__all__ = ["cli", "export", "generate", "report", "serve", "train"]
