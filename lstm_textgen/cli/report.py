"""lstm-textgen evaluate, plot, info and runs: reading trained runs back."""
from __future__ import annotations

import json

import click

from lstm_textgen.cli.base import cli, run_option, user_errors
from lstm_textgen.errors import TextgenError
from lstm_textgen.usertext import printable
from lstm_textgen.config.values import command


@cli.command(short_help="Score a run on held-out text.")
@run_option
@click.argument("files", nargs=-1, required=True)
@click.option("as_json", "--json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate(run_dir, files, as_json):
    """Score a run on held-out text FILES: perplexity, accuracy, OOV rate, unigram baseline."""
    from lstm_textgen.run.rundir import load_run

    with user_errors():
        run = load_run(run_dir)
        from lstm_textgen.cli.quiet import quiet_tensorflow

        quiet_tensorflow()
        from lstm_textgen.generation.evaluate import evaluate as evaluate_run, format_report

        report = evaluate_run(run, list(files))
    click.echo(json.dumps(report) if as_json else format_report(report))


@cli.command(short_help="Plot the loss curves of one or more runs.")
@click.option("run_dirs", "--run", "-r", multiple=True, metavar="DIR",
              help="Run directory; repeat it, or list more DIRs after it, to compare runs.")
@click.argument("more_runs", nargs=-1, metavar="[DIR]...")
@click.option("out", "-o", "--out", metavar="FILE",
              help="Image to write (.png, .svg, .pdf); default DIR/curves.png for one run, curves.png for several.")
@click.option("--force", "-f", is_flag=True, help="Replace FILE even if lstm-textgen did not write it.")
def plot(run_dirs, more_runs, out, force):
    """Draw loss and validation perplexity per epoch of one or more runs on one figure."""
    from pathlib import Path

    from lstm_textgen.run.curves import plot_runs
    from lstm_textgen.run.files import CURVES

    with user_errors():
        runs = [Path(d) for d in (*run_dirs, *more_runs)]
        if not runs:
            raise TextgenError("give a run directory: lstm-textgen plot --run runs/NAME [DIR ...]")
        target = Path(out) if out else (runs[0] / CURVES if len(runs) == 1 else Path(CURVES))
        plot_runs(runs, target, force=force)
    click.echo(f"Wrote {target}")


@cli.command(short_help="Summarise a run directory.")
@run_option
@click.option("as_json", "--json", is_flag=True, help="Print the summary as one JSON object.")
def info(run_dir, as_json):
    """Summarise a run: corpus, tokenizer, layers and parameters, training figures, files and sizes."""
    from lstm_textgen.run.report import damage_error, run_info
    from lstm_textgen.run.show import format_info

    with user_errors():
        summary = run_info(run_dir)
        click.echo(json.dumps(summary, indent=2) if as_json else printable(format_info(summary)))
        if summary["damaged"]:
            raise damage_error(run_dir, summary["damaged"])


@cli.command(short_help="List the runs under FOLDER (default runs/).")
@click.argument("folder", default="runs", required=False)
def runs(folder):
    """List the runs under FOLDER (default runs/): corpus, epochs, best val perplexity, size, last change."""
    from lstm_textgen.run.report import list_runs
    from lstm_textgen.run.show import format_runs_table

    with user_errors():
        rows = list_runs(folder)
        if not rows:
            click.echo(f"No runs under {folder}; train one with: "
                       f"{command('lstm-textgen', 'train', 'CORPUS', '--run', f'{folder}/NAME')}")
            return
        click.echo(printable(format_runs_table(rows)))
        damaged = [row for row in rows if row["damaged"]]
        if damaged:
            named = "; ".join(f"{row['path']} ({row['status'].removeprefix('damaged: ')})" for row in damaged[:3])
            raise TextgenError(f"{len(damaged)} of the {len(rows)} runs {'is' if len(damaged) == 1 else 'are'} "
                               f"damaged: {named}{'; ...' if len(damaged) > 3 else ''}; "
                               f"{command('lstm-textgen', 'info', '--run', damaged[0]['path'])} says what to do")
