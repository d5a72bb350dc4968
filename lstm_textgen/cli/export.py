"""lstm-textgen export: a run written as a SavedModel, TFLite, ONNX or a static web page."""
from __future__ import annotations

import click

from lstm_textgen.cli.base import cli, run_option, user_errors


@cli.command(short_help="Write a run as a SavedModel, TFLite, ONNX or a web page.")
@run_option
@click.option("fmt", "--format", required=True, metavar="FORMAT",
              help="savedmodel, tflite, onnx or web (a static page that writes offline).")
@click.option("out", "-o", "--out", metavar="DIR", type=click.Path(file_okay=True, dir_okay=True),
              help="The export's folder  [default: beside the run, e.g. runs/demo-onnx]")
@click.option("quantize", "--quantize", metavar="KIND",
              help="int8 or float16 weights (tflite, onnx, web): smaller, checked for top-1 and perplexity.")
def export(run_dir, fmt, out, quantize):
    """Write a run in another form: a folder with the model, tokenizer.json, a README and manifest.json, checked
    against the run with the format's own runtime before it is put in place."""
    from lstm_textgen.export.write import check_choice, export as export_run

    with user_errors():
        if fmt != "web":  # before the export extra imports TensorFlow (the page is written from numpy arrays)
            from lstm_textgen.cli.quiet import quiet_tensorflow

            quiet_tensorflow()
        check_choice(fmt, quantize)  # before the run is read
        done = export_run(run_dir, fmt, out, quantize)
    click.echo(done.figures.line())
    for name, size in done.sizes.items():
        click.echo(f"  {name}: {size / 1e6:,.2f} MB")
    click.echo(f"Wrote {done.out} (see its README.md)")
