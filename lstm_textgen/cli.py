"""Click commands: parse, call the library, print. Keras is imported inside commands so --help stays fast."""
from __future__ import annotations

import dataclasses
import errno
import json
import logging
import sys
from contextlib import contextmanager

import click

from lstm_textgen import __version__
from lstm_textgen.errors import TextgenError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@contextmanager
def user_errors():
    """Turn a user's mistake into one `Error:` line (at the start of a line) and exit 1; --debug keeps the
    traceback."""
    context = click.get_current_context()
    debug = context.find_root().params.get("debug")
    try:
        yield
    except (TextgenError, KeyboardInterrupt, OSError, MemoryError) as e:
        message = _user_message(e)
        if debug or message is None:
            raise
        if context.meta.get("open_line"):  # a streamed text ended mid-line
            click.echo()
        if isinstance(e, KeyboardInterrupt):  # after the terminal's ^C
            click.echo(f"\nError: {message}", err=True)
            sys.exit(130)
        raise click.ClickException(" ".join(message.split("\n"))) from None


def _user_message(error: BaseException) -> str | None:
    """The one line for an error that is the user's or the machine's, not a bug (None: a bug)."""
    if isinstance(error, TextgenError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, MemoryError):
        return ("out of memory; lower model.units, embedding.dim, data.max_vocab, train.batch_size or "
                "data.window_size, or close other programs")
    # a full disk or a folder that turned read-only is the machine's state, not a bug
    if error.errno in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EPERM):
        where = f" writing {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}; free some space or choose a writable --run"
    return None


def _stream(piece: str) -> None:
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

        tqdm.write(self.format(record), file=sys.stderr)


@cli.command(short_help="Train a model on CORPUS into a run directory.")
@click.argument("corpus", required=False)
@click.option("config_path", "-c", "--config", type=click.Path(dir_okay=False),
              help="YAML config file (defaults: configs/default.yaml shows them).")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set model.units=128 (repeatable).")
@click.option("run_dir", "--run", metavar="DIR", help="Run directory (train.run_dir; default runs/<corpus name>).")
@click.option("--restart", "mode", flag_value="restart", help="Delete the run already in DIR and start over.")
@click.option("--resume", "mode", flag_value="resume", help="Only continue the run in DIR; never start a new one.")
def train(corpus, config_path, overrides, run_dir, mode):
    """Train a model on CORPUS (a file, folder or glob) and save it to a run directory.

    Run the same command again to continue an interrupted run where it stopped.
    """
    from lstm_textgen.config import load_config
    from lstm_textgen.rundir import folder_kind, saved_config_values

    with user_errors():
        values = {key: value for key, value in (("data.corpus", corpus), ("train.run_dir", run_dir)) if value}
        config = load_config(config_path, overrides, values)
        if mode != "restart" and folder_kind(config.run_dir) == "run":  # continue it: its own settings are the base
            config = load_config(config_path, overrides, values, base=saved_config_values(config.run_dir))
        from lstm_textgen.quiet import quiet_tensorflow
        from lstm_textgen.resume import Stopped
        from lstm_textgen.rundir import read_metrics

        quiet_tensorflow()
        from lstm_textgen.training import train as train_model  # TensorFlow loads here

        try:
            run = train_model(config, mode or "auto")
        except Stopped as stopped:
            click.echo(str(stopped), err=True)
            sys.exit(130)
        metrics = read_metrics(run)
    click.echo(f"Saved run to {run} (best val perplexity {metrics['best_val_perplexity']:.2f} "
               f"after epoch {metrics['best_epoch']}, {metrics['tokens_per_second']:,.0f} tokens/s)")
    click.echo(f"Generate with: lstm-textgen generate --run {run} --seed \"...\"")


def _run_option(f):
    return click.option("run_dir", "--run", "-r", required=True, metavar="DIR",
                        help="Run directory written by train.")(f)


@cli.command(short_help="Continue a seed phrase with text from a run.")
@_run_option
@click.option("seed", "--seed", "-s", metavar="TEXT", help="Seed phrase to continue.")
@click.option("seeds_file", "--seeds-file", type=click.Path(dir_okay=False), help="One seed phrase a line.")
@click.option("length", "-n", "--length", type=int, help="Tokens to generate (default: the run's generate.length).")
@click.option("--temperature", "-t", type=float, help="Sampling temperature > 0; lower is safer.")
@click.option("--top-k", type=int, help="Sample among the k likeliest tokens (0 = off).")
@click.option("--top-p", type=float, help="Sample from the smallest set holding this probability (1 = off).")
@click.option("--greedy", is_flag=True, default=None, help="Always take the likeliest token.")
@click.option("--repetition-penalty", type=float, help="Above 1 discourages tokens already used.")
@click.option("--no-repeat-ngram-size", type=int, help="Never repeat an n-gram of this size.")
@click.option("--min-length", type=int, help="Tokens before any stop condition applies.")
@click.option("stop", "--stop", multiple=True, metavar="TEXT", help="Stop once new text contains TEXT (repeatable).")
@click.option("--stop-newlines", type=int, help="Stop after this many newlines.")
@click.option("--random-seed", type=int, help="Fix the random draws to repeat a sample exactly.")
@click.option("--samples", type=int, default=1, show_default=True, help="Samples per seed, made as one batch.")
@click.option("--jsonl", is_flag=True, help="Print one JSON object per sample.")
@click.option("--interactive", "-i", is_flag=True, help="Pick each next word yourself from the top 10.")
@click.option("--novelty", is_flag=False, flag_value="4,8", default=None, metavar="[N,...]",
              help="Report the share of n-grams copied from the training text (n = 4,8 unless given).")
def generate(run_dir, seed, seeds_file, samples, jsonl, interactive, random_seed, novelty, **settings):
    """Continue a seed phrase with text from a trained run."""
    from lstm_textgen.rundir import load_run
    from lstm_textgen.sample import generate_many, new_random_seed, settings_for

    with user_errors():
        seeds, run = _read_seeds(seed, seeds_file), load_run(run_dir)
        settings = settings_for(run, **(settings | {"stop": list(settings["stop"]) or None})).check(_flag_names())
        novelty_ns = _novelty_sizes(novelty, interactive)  # None without --novelty
        _check_seeds(run, seeds)  # refuse an unusable seed before printing anything
        if interactive:
            return _interactive(run, seeds, samples, jsonl, settings.length)
        base = random_seed if random_seed is not None else new_random_seed()
        if random_seed is None:
            click.echo(f"random seed: {base} (pass --random-seed {base} to repeat)", err=True)
        streaming = len(seeds) * samples == 1 and not jsonl
        run.weights  # reads model.keras: a damaged one is named before anything is printed
        if streaming:
            _stream(seeds[0])
        on_piece = (lambda row, piece: _stream(piece)) if streaming else None
        results = generate_many(run, seeds, samples, base, on_piece, **dataclasses.asdict(settings))
        reports = _novelty_reports(run, results, novelty_ns)  # [] without --novelty
    _echo_samples(results, reports, streaming, jsonl)


def _flag_names():
    """GenerateConfig field -> the generate flag that sets it, so errors name what the person typed."""
    flags = {p.name: "/".join(sorted(p.opts, key=len)) for p in click.get_current_context().command.params}
    return lambda name: flags.get(name, f"generate.{name}")


def _check_seeds(run, seeds: list[str]) -> None:
    from lstm_textgen.sample import encode_seed

    for text in seeds:
        _, unknown = encode_seed(run.tokenizer, text)
        if unknown:
            click.echo(f"not in the vocabulary, fed as <unk>: {', '.join(unknown)}", err=True)


def _interactive(run, seeds: list[str], samples: int, jsonl: bool, length: int) -> None:
    """generate --interactive: the person picks each next word from the model's top 10."""
    from lstm_textgen.interactive import Continuation, interact

    if len(seeds) > 1 or samples > 1 or jsonl:
        raise TextgenError("--interactive takes one --seed, without --seeds-file, --samples or --jsonl")
    continuation = Continuation(run, seeds[0])
    interact(continuation, 10, length, ask=_ask, show=click.echo, warn=lambda message: click.echo(message, err=True))
    click.echo(continuation.text)


def _echo_samples(results: list, reports: list[dict], streamed: bool, jsonl: bool) -> None:
    if streamed:  # the seed and the pieces are printed already
        click.echo()
        _echo_novelty(reports, 0)
        return
    for i, sample in enumerate(results):
        if jsonl:
            click.echo(json.dumps(sample.to_dict() | ({"novelty": reports[i]} if reports else {}), ensure_ascii=False))
        else:
            click.echo(f"--- sample {i + 1} (random seed {sample.random_seed}) ---")
            click.echo(sample.seed + sample.text)
            _echo_novelty(reports, i)


def _novelty_sizes(novelty: str | None, interactive: bool) -> tuple[int, ...] | None:
    """generate --novelty N,...: the n-gram sizes, checked before anything is generated."""
    if novelty is None:
        return None
    if interactive:
        raise TextgenError("--novelty measures generated samples; drop it with --interactive")
    from lstm_textgen.novelty import parse_ns

    return parse_ns(novelty)


def _novelty_reports(run, results, ns: tuple[int, ...] | None) -> list[dict]:
    """generate --novelty: how much of each sample is copied from the training corpus."""
    if ns is None:
        return []
    from lstm_textgen.novelty import sample_novelty

    return sample_novelty(run, results, ns)


def _echo_novelty(reports: list[dict], i: int) -> None:
    if reports:
        from lstm_textgen.novelty import format_novelty

        click.echo(format_novelty(reports[i]), err=True)


def _ask(prompt: str) -> str | None:
    """One line from the person at the keyboard; None when input ends."""
    try:
        return click.prompt(prompt, default="", show_default=False, prompt_suffix="> ")
    except click.Abort:
        return None


def _read_seeds(seed: str | None, seeds_file: str | None) -> list[str]:
    if seeds_file:
        try:
            with open(seeds_file, encoding="utf-8") as f:
                lines = [line.rstrip("\r\n") for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise TextgenError(f"cannot read --seeds-file {seeds_file}: {getattr(e, 'strerror', None) or e}") from None
        if not lines:
            raise TextgenError(f"--seeds-file {seeds_file} has no seed phrases; write one a line")
        return ([seed] if seed is not None else []) + lines
    if seed is None:
        raise TextgenError('give a seed phrase with --seed "once upon a time" (or --seeds-file FILE)')
    return [seed]


@cli.command(short_help="List the likeliest next words after TEXT.")
@_run_option
@click.argument("text")
@click.option("top", "-k", "--top", type=int, default=10, show_default=True, help="How many next words to list.")
@click.option("as_json", "--json", is_flag=True, help="Print one JSON object.")
def suggest(run_dir, text, top, as_json):
    """List the likeliest next words after TEXT, with their probabilities."""
    from lstm_textgen.rundir import load_run
    from lstm_textgen.interactive import suggest as suggest_next

    with user_errors():
        run = load_run(run_dir)
        choices = suggest_next(run, text, top)
    unknown = run.tokenizer.unknown(text)
    if unknown:
        click.echo(f"not in the vocabulary, fed as <unk>: {', '.join(unknown)}", err=True)
    if as_json:
        click.echo(json.dumps({"text": text, "next": [{"token": w, "probability": p} for w, p in choices],
                               "unknown_seed_words": unknown}, ensure_ascii=False))
        return
    width = max(len(w) for w, _ in choices)
    for i, (word, probability) in enumerate(choices, 1):
        click.echo(f"{i:>3}. {word:<{width}}  {probability:.4f}")


@cli.command(short_help="Score a run on held-out text.")
@_run_option
@click.argument("files", nargs=-1, required=True)
@click.option("as_json", "--json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate(run_dir, files, as_json):
    """Score a run on held-out text FILES: perplexity, accuracy, OOV rate, unigram baseline."""
    from lstm_textgen.rundir import load_run

    with user_errors():
        run = load_run(run_dir)
        from lstm_textgen.quiet import quiet_tensorflow

        quiet_tensorflow()
        from lstm_textgen.evaluate import evaluate as evaluate_run, format_report

        report = evaluate_run(run, list(files))
    click.echo(json.dumps(report) if as_json else format_report(report))


@cli.command(short_help="Plot the loss curves of one or more runs.")
@click.option("run_dirs", "--run", "-r", multiple=True, metavar="DIR",
              help="Run directory; repeat it, or list more DIRs after it, to compare runs.")
@click.argument("more_runs", nargs=-1, metavar="[DIR]...")
@click.option("out", "-o", "--out", metavar="FILE",
              help="Image to write (.png, .svg, .pdf); default DIR/curves.png for one run, curves.png for several.")
def plot(run_dirs, more_runs, out):
    """Draw loss and validation perplexity per epoch of one or more runs on one figure."""
    from pathlib import Path

    from lstm_textgen.curves import plot_runs
    from lstm_textgen.rundir import CURVES

    with user_errors():
        runs = [Path(d) for d in (*run_dirs, *more_runs)]
        if not runs:
            raise TextgenError("give a run directory: lstm-textgen plot --run runs/NAME [DIR ...]")
        target = Path(out) if out else (runs[0] / CURVES if len(runs) == 1 else Path(CURVES))
        plot_runs(runs, target)
    click.echo(f"Wrote {target}")


@cli.command(short_help="Summarise a run directory.")
@_run_option
@click.option("as_json", "--json", is_flag=True, help="Print the summary as one JSON object.")
def info(run_dir, as_json):
    """Summarise a run: corpus, tokenizer, layers and parameters, training figures, files and sizes."""
    from lstm_textgen.report import format_info, run_info

    with user_errors():
        summary = run_info(run_dir)
    click.echo(json.dumps(summary, indent=2) if as_json else format_info(summary))


@cli.command(short_help="List the runs under FOLDER (default runs/).")
@click.argument("folder", default="runs", required=False)
def runs(folder):
    """List the runs under FOLDER (default runs/): corpus, epochs, best val perplexity, size, last change."""
    from lstm_textgen.report import format_runs_table, list_runs

    with user_errors():
        rows = list_runs(folder)
    if not rows:
        click.echo(f"No runs under {folder}; train one with: lstm-textgen train CORPUS --run {folder}/NAME")
        return
    click.echo(format_runs_table(rows))
