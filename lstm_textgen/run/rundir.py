"""Reading a run directory back, each file with its own checks: whether a folder is a usable run (and what to do
when it is not), its config, tokenizer, metrics and origin record, and Run / load_run()."""
from __future__ import annotations

import os
import zipfile
from functools import cached_property
from pathlib import Path

from lstm_textgen.config import ORIGIN_KEY, Config, load_config
from lstm_textgen.config.values import command, read_yaml, shown
from lstm_textgen.errors import CheckpointError, ConfigError, TokenizerError
from lstm_textgen.model.weights import ModelWeights, read_model_weights
from lstm_textgen.run.files import (CHECKPOINTS, CONFIG, MARKER, METRICS, MODEL, TOKENIZER, epoch_checkpoint,
                                    folder_kind, read_json, trained_files)
from lstm_textgen.run.stamp import check_saved_meta
from lstm_textgen.text import load_tokenizer as read_tokenizer
from lstm_textgen.text.tokenizer import Tokenizer


def check_is_run(run_dir: Path) -> None:
    """Refuse a folder that is not a run directory (trained or not), naming what is wrong and what to do."""
    kind = folder_kind(run_dir)
    if kind == "absent":
        raise CheckpointError(f"run directory {run_dir} does not exist; train one with: "
                              f"{command('lstm-textgen', 'train', 'CORPUS', '--run', run_dir)} (lstm-textgen runs "
                              "lists the runs)")
    if kind == "file":
        what = "a link to a folder that is gone" if not run_dir.exists() else "a file"
        raise CheckpointError(f"{run_dir} is {what}, not a run directory; pass the folder that train wrote")
    if kind != "run":
        raise CheckpointError(f"{run_dir} is not an lstm-textgen run directory (it has no {MARKER}); pass the "
                              "folder that train wrote (lstm-textgen runs lists the runs)")


def check_run_files(run_dir: Path) -> None:
    """check_is_run, and refuse a run without the config and tokenizer that every command using it needs."""
    check_is_run(run_dir)
    for name in (CONFIG, TOKENIZER):
        if not (run_dir / name).is_file():
            raise CheckpointError(f"{run_dir / name} is missing{_dangling(run_dir / name)}, and the run cannot be "
                                  "used without it; copy it back from a backup of the run, or train a new run")


def _dangling(path: Path) -> str:
    return " (a link to a file that is gone)" if path.is_symlink() and not path.exists() else ""


def check_run_dir(run_dir: Path) -> None:
    """Refuse a folder that is not a trained run, naming what is missing and what to run."""
    check_run_files(run_dir)
    check_model(run_dir)


def check_model(run_dir: Path) -> None:
    """Refuse a run without model.keras: one that has trained lost it (say how to bring it back), one that has
    not is not trained yet (say how to continue it)."""
    if (run_dir / MODEL).is_file():
        return
    try:
        best = read_metrics(run_dir).get("best_epoch")
    except CheckpointError:  # no best epoch to offer: the message below still says what to do
        best = None
    checkpoint = epoch_checkpoint(run_dir, best) if isinstance(best, int) and best > 0 else None
    if checkpoint is not None and zipfile.is_zipfile(checkpoint):
        raise CheckpointError(f"{run_dir / MODEL} is missing{_dangling(run_dir / MODEL)}; its best epoch is "
                              f"saved: copy it back with: {command('cp', checkpoint, run_dir / MODEL)}")
    if trained_files(run_dir):
        raise CheckpointError(f"{run_dir / MODEL} is missing{_dangling(run_dir / MODEL)}; train the run on with: "
                              f"{command('lstm-textgen', 'train', '--run', run_dir)}")
    raise CheckpointError(f"{run_dir} has no {MODEL} yet (training has not finished an epoch); continue its "
                          f"training with: {command('lstm-textgen', 'train', '--run', run_dir)}")


# metrics.json's fields: those every run has, and the type of each field it may have
METRICS_REQUIRED = ("epochs", "best_epoch", "best_val_perplexity", "tokens_per_second")


_NUMBERS = ("best_val_perplexity", "tokens_per_second", "windows_per_second")


_NUMBERS_OR_NULL = ("best_val_loss", "best_val_bits_per_char")  # null: no validation loss yet


_COUNTS = ("epochs", "best_epoch", "tokens_seen", "train_tokens", "val_tokens", "val_chars", "vocab_size",
           "parameters", "batch_size")


def has_trained(run_dir: Path) -> bool:
    """Whether the run has finished an epoch (or its files say so): then its metrics.json and history.csv must be
    there."""
    return bool(trained_files(Path(run_dir)))


def read_metrics(run_dir: Path) -> dict:
    """metrics.json, checked field by field; {} while no epoch has ended. Missing from a run that has trained,
    damaged or of the wrong shape: a CheckpointError naming it and what to do."""
    path = Path(run_dir) / METRICS
    if not path.exists() and not path.is_symlink() and not has_trained(run_dir):
        return {}
    what_to_do = ("copy it back from a backup of the run (training writes it anew after each epoch; the run's "
                  f"{MODEL} still generates)")
    try:
        metrics = read_json(path)
    except CheckpointError as e:
        raise CheckpointError(f"{e}; {what_to_do}") from None
    problem = next((f"it lacks {key}" for key in METRICS_REQUIRED if key not in metrics), None) or next(
        (f"{key} is {shown(value)}" for key, value in metrics.items()
         if (key in _NUMBERS and not _is_number(value)) or (key in _NUMBERS_OR_NULL and value is not None
                                                           and not _is_number(value))
         or (key in _COUNTS and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0))), None)
    if problem:
        raise CheckpointError(f"{path} is damaged ({problem}); {what_to_do}")
    return metrics


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_tokenizer(run_dir: Path) -> Tokenizer:
    """The run's tokenizer.json, whatever its level; a missing or damaged one is named with what to do."""
    try:
        return read_tokenizer(Path(run_dir) / TOKENIZER)
    except TokenizerError as e:
        raise CheckpointError(f"{e}: the run cannot encode or decode text without it; copy it back from a backup of "
                              "the run, or train a new run") from None


def saved_config_values(run_dir: Path) -> dict:
    """The run's config.yaml as read (for a command that continues the run), checked for its schema."""
    path = Path(run_dir) / CONFIG
    try:
        if not path.is_file():
            raise ConfigError(f"{path} is missing{_dangling(path)}")
        raw = read_yaml(path, "run config")
        check_saved_meta(raw, path)
    except ConfigError as e:
        raise CheckpointError(f"{e}; the run's settings are lost: copy it back from a backup of the run, or train a "
                              "new run") from None
    return raw


def load_saved_config(run_dir: Path) -> Config:
    path = Path(run_dir) / CONFIG
    raw = saved_config_values(run_dir)
    try:
        return load_config(None, base=raw)
    except ConfigError as e:
        raise CheckpointError(f"{path} is not a valid run config ({e}); copy it back from a backup of the run, or "
                              "train a new run") from None


class Run:
    """A trained run directory: .config, .tokenizer, and lazily .model (Keras) and .weights (numpy)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        check_run_dir(self.run_dir)
        self.config = load_saved_config(self.run_dir)
        self.tokenizer = load_tokenizer(self.run_dir)

    @cached_property
    def model(self):
        """The Keras model, loaded with safe_mode (nothing is unpickled)."""
        import keras

        path = self.run_dir / MODEL
        try:
            return keras.models.load_model(path, compile=False, safe_mode=True)
        except (ValueError, OSError, zipfile.BadZipFile, KeyError) as e:
            raise CheckpointError(f"{path} is corrupt or unreadable ({type(e).__name__}); retrain, or copy back "
                                  f"a checkpoint from {self.run_dir / CHECKPOINTS}") from None

    @cached_property
    def weights(self) -> ModelWeights:
        return read_model_weights(self.run_dir / MODEL)

    def metrics(self) -> dict:
        return read_metrics(self.run_dir)


def load_run(run_dir: str | os.PathLike) -> Run:
    """Open a run directory for generation or evaluation; errors name what is missing."""
    return Run(Path(run_dir))


# The origin record's fields and the types they hold (None where a base run had no figure)
ORIGIN_FIELDS = {"init_from": str, "path": str, "config_sha256": str, "best_val_perplexity": (int, float, type(None)),
                 "best_epoch": (int, type(None)), "base_vocab": str, "base_vocab_size": int, "added_tokens": int,
                 "unknown_share": (int, float)}


def saved_origin(run_dir: Path) -> dict | None:
    """A fine-tuned run's origin record from its own config.yaml (a resumed run never reads its base); None for a
    run trained from scratch. A record of the wrong shape is a CheckpointError naming the file."""
    origin = saved_config_values(run_dir).get(ORIGIN_KEY)
    if origin is None:
        return None
    problem = "it is not a mapping" if not isinstance(origin, dict) else "it lacks init_from" if (
        "init_from" not in origin) else next((f"{key} is {shown(origin[key])}" for key, kind in ORIGIN_FIELDS.items()
                                             if key in origin and (not isinstance(origin[key], kind)
                                                                   or isinstance(origin[key], bool))), None)
    if problem:
        raise CheckpointError(f"{Path(run_dir) / CONFIG} is damaged: its {ORIGIN_KEY} (the base run it was "
                              f"fine-tuned from) is unreadable ({problem}); copy it back from a backup of the run")
    return origin
