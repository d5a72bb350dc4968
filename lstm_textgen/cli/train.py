"""lstm-textgen train."""
from __future__ import annotations

import sys

import click

from lstm_textgen.cli.base import cli, refuse_together, user_errors
from lstm_textgen.config.values import command

TRAINING_MEMORY = ("lower model.units, embedding.dim, data.max_vocab, train.batch_size or data.window_size, or close "
                   "other programs")


@cli.command(short_help="Train a model on CORPUS into a run directory.")
@click.argument("corpus", required=False)
@click.option("config_path", "-c", "--config", type=click.Path(dir_okay=False),
              help="YAML config file (defaults: configs/default.yaml shows them).")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set model.units=128 (repeatable).")
@click.option("run_dir", "--run", metavar="DIR", help="Run directory (train.run_dir; default runs/<corpus name>).")
@click.option("init_from", "--from", metavar="RUN",
              help="Fine-tune: start from this trained run's weights, tokenizer and settings (train.init_from).")
@click.option("--restart", is_flag=True, help="Delete the run already in DIR and start over.")
@click.option("--resume", is_flag=True, help="Only continue the run in DIR; never start a new one.")
def train(corpus, config_path, overrides, run_dir, init_from, restart, resume):
    """Train a model on CORPUS (a file, folder or glob) and save it to a run directory.

    Run the same command again to continue an interrupted run where it stopped. With --from RUN the new run
    starts from a trained run (read, never written) and trains on CORPUS (docs/guides/fine-tuning.md).
    """
    from lstm_textgen.cli.quiet import quiet_tensorflow
    from lstm_textgen.training.plan import training_config
    from lstm_textgen.training.resume import Stopped
    from lstm_textgen.run.rundir import read_metrics

    refuse_together(("--resume", resume), ("--restart", restart), why="--resume only continues a run, --restart "
                    "deletes it and starts over")
    mode = "restart" if restart else "resume" if resume else None
    with user_errors(TRAINING_MEMORY):
        values = {key: value for key, value in (("data.corpus", corpus), ("train.run_dir", run_dir),
                                                ("train.init_from", init_from)) if value}
        config = training_config(config_path, overrides, values, restart=mode == "restart")
        quiet_tensorflow()
        from lstm_textgen.training.train import train as train_model  # TensorFlow loads here

        try:
            run = train_model(config, mode or "auto")
        except Stopped as stopped:
            click.echo(str(stopped), err=True)
            sys.exit(130)
        metrics = read_metrics(run)
    figures = (f" (best val perplexity {metrics['best_val_perplexity']:.2f} after epoch {metrics['best_epoch']}, "
               f"{metrics['tokens_per_second']:,.0f} tokens/s)") if metrics else ""
    click.echo(f"Saved run to {run}{figures}")
    click.echo(f"Generate with: {command('lstm-textgen', 'generate', '--run', run)} --seed \"...\"")
