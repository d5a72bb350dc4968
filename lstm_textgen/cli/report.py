"""lstm-textgen evaluate, inspect, plot, info and runs: reading trained runs back."""
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


@cli.command(short_help="Look inside the LSTM: gates, states and predictions over a text.")
@run_option
@click.argument("text")
@click.option("out", "-o", "--out", metavar="FILE",
              help="The page to write (.html); default inspect.html, unless --json or --find print instead.")
@click.option("as_json", "--json", is_flag=True,
              help="Print JSON lines, one per token (with --find: one JSON object of the units found).")
@click.option("layers", "--layer", type=int, multiple=True, metavar="N",
              help="Only recurrent layer N (1 is the first; repeatable).")
@click.option("units", "--units", metavar="LIST", help="Only these units of each layer, e.g. 0-15,40.")
@click.option("feature", "--find", metavar="FEATURE",
              help="Rank the units by correlation with FEATURE: quotes, parens, line_position, word_start, "
                   "after_newline, or a regular expression (tokens inside its matches).")
@click.option("part", "--part", metavar="PART",
              help="What --find correlates: cell (the default; hidden for a GRU), hidden, or a gate "
                   "(input_gate, forget_gate, output_gate, candidate; update_gate, reset_gate).")
@click.option("top", "--top", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="How many units --find lists.")
@click.option("--force", "-f", is_flag=True, help="Replace FILE even if lstm-textgen did not write it.")
def inspect(run_dir, text, out, as_json, layers, units, feature, part, top, force):
    """Run the model over TEXT (a string, a file, or - for standard input) and record, per token and layer, the
    gates, the cell and hidden states, the five likeliest next tokens and the real next token's surprisal.

    Writes a self-contained page (text coloured by a unit, gate saturation, find units), or prints JSON lines,
    or with --find the units that follow a feature best. TensorFlow is not imported."""
    from pathlib import Path

    from lstm_textgen.run.rundir import load_run
    from lstm_textgen.generation import inspect as inside
    from lstm_textgen.outputs import check_target

    if part is not None and feature is None:
        raise click.UsageError("--part says what --find correlates; give --find FEATURE too")
    with user_errors():
        target = Path(out) if out else (None if as_json or feature else Path("inspect.html"))
        if target is not None:
            if target.suffix.lower() != ".html":
                raise TextgenError(f"cannot write a page to {target}; use a name ending in .html")
            check_target(target, force)
        run = load_run(run_dir)
        kept = _unit_list(units)
        reading = inside.inspect(run, _text_argument(text), list(layers) or None, kept)
        if feature is not None:
            found = inside.find_units(reading, feature, part, top)
            if as_json:
                click.echo(json.dumps({"feature": feature, "part": found[0]["part"] if found else part,
                                       "units": found}, ensure_ascii=False))
            else:
                click.echo(_found_table(feature, found))
        elif as_json:
            for line in inside.json_lines(reading):
                click.echo(line)
        if target is not None:
            _write_page(target, inside.page_data(reading, Path(run_dir).resolve().name))
            click.echo(f"Wrote {target} ({len(reading.ids):,} tokens); open it in a browser", err=bool(as_json))


def _text_argument(text: str) -> str:
    """inspect's TEXT: - reads standard input, an existing file's name reads the file, anything else is the text."""
    from pathlib import Path

    from lstm_textgen.text.corpus import read_text
    from lstm_textgen.usertext import decode_text

    if text == "-":
        return decode_text(click.get_binary_stream("stdin").read(), "standard input")
    path = Path(text)
    if len(text) < 4096 and "\n" not in text and path.is_file():
        return read_text(path, "TEXT file")
    return text


def _unit_list(units: str | None) -> list[int] | None:
    """--units 0-15,40 -> [0, ..., 15, 40]; one line when it is not such a list."""
    if units is None:
        return None
    kept = []
    for part in units.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()) or (dash and int(high) < int(low)):
            raise TextgenError(f"--units {units!r} is not a list of unit numbers and ranges, e.g. 0-15,40")
        kept += list(range(int(low), int(high) + 1)) if dash else [int(low)]
    return kept


def _found_table(feature: str, found: list[dict]) -> str:
    lines = [f"units following {feature!r}, strongest first (Pearson's r over the text's tokens):",
             f"{'rank':>4}  {'layer':<8} {'unit':>5}  {'part':<12} {'r':>7}"]
    lines += [f"{i:>4}  {row['layer']:<8} {row['unit']:>5}  {row['part']:<12} {row['correlation']:>7.3f}"
              for i, row in enumerate(found, 1)]
    return printable("\n".join(lines))


def _write_page(target, data: dict) -> None:
    from lstm_textgen.atomic import replacing
    from lstm_textgen.serve.pages import inspect_page

    try:
        with replacing(target, suffix=".html") as tmp:
            tmp.write_text(inspect_page(data), encoding="utf-8")
    except OSError as e:
        raise TextgenError(f"cannot write {target}: {e.strerror or e}; choose another -o") from None


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
