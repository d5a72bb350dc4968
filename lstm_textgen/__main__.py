"""`python -m lstm_textgen` runs the command line."""
from lstm_textgen.cli import cli

cli()
