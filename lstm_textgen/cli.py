"""Click commands: parse, call the library, print. Keras is imported inside commands so --help stays fast."""
from __future__ import annotations

import errno
import json
import logging
import os
import sys
from contextlib import contextmanager

import click

from lstm_textgen import __version__
from lstm_textgen.errors import TextgenError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@contextmanager
def user_errors():
    """Turn a user's mistake into one `Error:` line and exit 1; --debug keeps the traceback."""
    debug = click.get_current_context().find_root().params.get("debug")
    try:
        yield
    except TextgenError as e:
        if debug:
            raise
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        if debug:
            raise
        click.echo("\nError: interrupted", err=True)
        sys.exit(130)
    except OSError as e:  # a full disk or a folder that turned read-only is the machine's state, not a bug
        if debug or e.errno not in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EPERM):
            raise
        where = f" writing {e.filename}" if e.filename else ""
        raise click.ClickException(f"{e.strerror}{where}; free some space or choose a writable --run") from None


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="lstm-textgen")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(debug):
    """Train an LSTM next-word model on your own text and generate new text from a seed phrase."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)


@cli.command()
@click.argument("corpus", required=False)
@click.option("config_path", "-c", "--config", type=click.Path(dir_okay=False),
              help="YAML config file (defaults: configs/default.yaml shows them).")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set model.units=128 (repeatable).")
@click.option("run_dir", "--run", metavar="DIR", help="Run directory (train.run_dir; default runs/<corpus name>).")
def train(corpus, config_path, overrides, run_dir):
    """Train a model on CORPUS (a file, folder or glob) and save it to a run directory."""
    from lstm_textgen.config import load_config

    with user_errors():
        values = {key: value for key, value in (("data.corpus", corpus), ("train.run_dir", run_dir)) if value}
        config = load_config(config_path, overrides, values)
        from lstm_textgen.training import train as train_model  # TensorFlow loads here, after the checks

        run = train_model(config)
        metrics = json.loads((run / "metrics.json").read_text())
    click.echo(f"Saved run to {run} (best val perplexity {metrics['best_val_perplexity']:.2f} "
               f"after epoch {metrics['best_epoch']}, {metrics['tokens_per_second']:,.0f} tokens/s)")
    click.echo(f"Generate with: lstm-textgen generate --run {run} --seed \"...\"")


def _run_option(f):
    return click.option("run_dir", "--run", "-r", required=True, metavar="DIR",
                        help="Run directory written by train.")(f)


@cli.command()
@_run_option
@click.option("seed", "--seed", "-s", metavar="TEXT", help="Seed phrase to continue.")
@click.option("seeds_file", "--seeds-file", type=click.Path(dir_okay=False), help="One seed phrase a line.")
@click.option("length", "-n", "--length", type=int, help="Tokens to generate (default: the run's generate.length).")
@click.option("--temperature", "-t", type=float, help="Sampling temperature > 0; lower is safer.")
@click.option("--top-k", type=int, help="Sample among the k likeliest tokens (0 = off).")
@click.option("--top-p", type=float, help="Sample from the smallest set holding this probability (1 = off).")
@click.option("--greedy", is_flag=True, help="Always take the likeliest token.")
@click.option("--repetition-penalty", type=float, help="Above 1 discourages tokens already used.")
@click.option("--no-repeat-ngram-size", type=int, help="Never repeat an n-gram of this size.")
@click.option("--min-length", type=int, help="Tokens before any stop condition applies.")
@click.option("stop", "--stop", multiple=True, metavar="TEXT", help="Stop once the text contains TEXT (repeatable).")
@click.option("--stop-newlines", type=int, help="Stop after this many newlines.")
@click.option("--random-seed", type=int, help="Fix the random draws to repeat a sample exactly.")
@click.option("--samples", "-k", type=int, default=1, show_default=True, help="Samples per seed, made as one batch.")
@click.option("--jsonl", is_flag=True, help="Print one JSON object per sample.")
def generate(run_dir, seed, seeds_file, samples, jsonl, random_seed, **options):
    """Continue a seed phrase with text from a trained run."""
    from lstm_textgen.sample import Generator, new_random_seed, settings_from
    from lstm_textgen.checkpoints import load_run

    with user_errors():
        seeds = _read_seeds(seed, seeds_file)
        if samples < 1:
            raise TextgenError(f"--samples must be >= 1, got {samples}")
        run = load_run(run_dir)
        stop = options.pop("stop") or None
        settings = settings_from(run, stop=list(stop) if stop else None, **options)
        settings.check()
        for ids_seed in seeds:
            unknown = run.tokenizer.unknown(ids_seed)
            if unknown:
                click.echo(f"not in the vocabulary, fed as <unk>: {', '.join(unknown)}", err=True)
        base = random_seed if random_seed is not None else new_random_seed()
        if random_seed is None:
            click.echo(f"random seed: {base} (pass --random-seed {base} to repeat)", err=True)
        batch = [s for s in seeds for _ in range(samples)]
        streaming = len(batch) == 1 and not jsonl
        if streaming:
            click.echo(seeds[0], nl=False)
        results = Generator(run).sample(
            batch, settings, [base + i for i in range(len(batch))],
            on_piece=(lambda row, piece: click.echo(piece, nl=False)) if streaming else None)
    if streaming:
        click.echo()
        return
    for i, sample in enumerate(results):
        if jsonl:
            click.echo(json.dumps(sample.to_dict(), ensure_ascii=False))
        else:
            click.echo(f"--- sample {i + 1} (random seed {sample.random_seed}) ---")
            click.echo(sample.seed + sample.text)


def _read_seeds(seed: str | None, seeds_file: str | None) -> list[str]:
    if seeds_file:
        try:
            with open(seeds_file, encoding="utf-8") as f:
                lines = [line.rstrip("\n") for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise TextgenError(f"cannot read --seeds-file {seeds_file}: {getattr(e, 'strerror', None) or e}") from None
        if not lines:
            raise TextgenError(f"--seeds-file {seeds_file} has no seed phrases; write one a line")
        return ([seed] if seed is not None else []) + lines
    if seed is None:
        raise TextgenError('give a seed phrase with --seed "once upon a time" (or --seeds-file FILE)')
    return [seed]


@cli.command()
@_run_option
@click.argument("files", nargs=-1, required=True)
@click.option("as_json", "--json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate(run_dir, files, as_json):
    """Score a run on held-out text FILES: perplexity, accuracy, OOV rate, unigram baseline."""
    from lstm_textgen.checkpoints import load_run

    with user_errors():
        run = load_run(run_dir)
        from lstm_textgen.evaluate import evaluate as evaluate_run, format_report

        report = evaluate_run(run, list(files))
    click.echo(json.dumps(report) if as_json else format_report(report))
