"""The run directory: every path and file name in it, saving config/model atomically, and Run / load_run()."""
from __future__ import annotations

import contextlib
import json
import os
import re
import time
import zipfile
from functools import cached_property
from pathlib import Path

from lstm_textgen import __version__, atomic
from lstm_textgen.atomic import remove_temporaries, replacing, write_text
from lstm_textgen.config import META_KEY, ORIGIN_KEY, Config, load_config
from lstm_textgen.run.stamp import check_saved_meta
from lstm_textgen.text.corpus import corpus_reads, find_files
from lstm_textgen.errors import CheckpointError, ConfigError, TextgenError, TokenizerError
from lstm_textgen.model.weights import ModelWeights, read_model_weights
from lstm_textgen.text import load_tokenizer as read_tokenizer
from lstm_textgen.text.cache import CACHE_FILES
from lstm_textgen.text.tokenizer import Tokenizer
from lstm_textgen.config.values import command, read_yaml, shown

MARKER = "lstm-textgen-run.json"  # written first into every run directory: what makes a folder a run
CONFIG, TOKENIZER, MODEL = "config.yaml", "tokenizer.json", "model.keras"
HISTORY, METRICS, CHECKPOINTS, TOKENS = "history.csv", "metrics.json", "checkpoints", "tokens"
SAMPLES, CURVES, TENSORBOARD = "samples.txt", "curves.png", "tensorboard"  # written by monitor.py
LOCK = ".lstm-textgen-lock"  # held while a training runs in the directory (run/lock.py)
STATE = "state.json"  # under checkpoints/: where training stands; written last, so it is the commit point
# Every name the program writes in a run directory is made here or listed here, and only these are ever removed
# (by exact name: a person's file anywhere in the folder stays, whatever it is called). TensorBoard names its own
# event files: the training state records each one it starts (TrainingState.logs).
RUN_FILES = (MARKER, CONFIG, TOKENIZER, MODEL, HISTORY, METRICS, SAMPLES, CURVES, LOCK)
_EPOCH, _STATE_WEIGHTS = re.compile(r"epoch_(\d+)\.keras"), re.compile(r"state_(\d+)\.weights\.h5")


def epoch_checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}.keras"


def epoch_checkpoint(run_dir: Path, epoch: int) -> Path:
    """checkpoints/epoch_NNN.keras: the plain model as it stood at the end of that epoch."""
    return Path(run_dir) / CHECKPOINTS / epoch_checkpoint_name(epoch)


def state_weights_name(global_step: int) -> str:
    """The name (under checkpoints/) of the weights file saved at a global step."""
    return f"state_{global_step:09d}.weights.h5"


def _made_by(pattern: re.Pattern, make, name: str) -> bool:
    """Whether name is one that make(number) gives: state_000000200.weights.h5, never state_old.weights.h5."""
    match = pattern.fullmatch(name)
    return match is not None and make(int(match.group(1))) == name


def is_epoch_checkpoint(name: str) -> bool:
    return _made_by(_EPOCH, epoch_checkpoint_name, name)


def is_state_weights(name: str) -> bool:
    return _made_by(_STATE_WEIGHTS, state_weights_name, name)


def epoch_checkpoints(run_dir: Path) -> list[Path]:
    """The epoch checkpoints present (files of our names only), oldest first."""
    folder = Path(run_dir) / CHECKPOINTS
    found = [p for p in folder.iterdir() if is_epoch_checkpoint(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(_EPOCH.fullmatch(p.name).group(1)))


def is_ours(folder: str, name: str) -> bool:
    """Whether the program writes a file of this name in this folder of a run ("" = the run directory itself)."""
    if folder == "":
        return name in RUN_FILES
    if folder == CHECKPOINTS:
        return name == STATE or is_epoch_checkpoint(name) or is_state_weights(name)
    return folder == TOKENS and name in CACHE_FILES


def token_file(run_dir: Path, split: str) -> Path:
    """tokens/train.npy or tokens/val.npy: the tokenized corpus, memory-mappable."""
    return Path(run_dir) / TOKENS / f"{split}.npy"


# --- what a folder is ----------------------------------------------------------------------------------
def folder_kind(folder: Path) -> str:
    """'absent', 'file', 'empty', 'run' (it has our marker, or is a run written by 0.1) or 'other'."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return "absent"
    if not folder.is_dir():
        return "file"
    if (folder / MARKER).exists() or (folder / MARKER).is_symlink() or _legacy_run(folder):
        return "run"
    return "other" if any(folder.iterdir()) else "empty"


def _legacy_run(folder: Path) -> bool:
    """A run directory written by lstm-textgen 0.1 (no marker): its config.yaml and tokenizer.json both carry
    the stamps that release wrote into them."""
    try:
        config = read_yaml(folder / CONFIG, "run config")
        tokenizer = json.loads((folder / TOKENIZER).read_text(encoding="utf-8"))
    except (TextgenError, OSError, ValueError):
        return False
    meta = config.get(META_KEY)
    return isinstance(meta, dict) and "schema" in meta and isinstance(tokenizer, dict) and "schema" in tokenizer


def write_marker(run_dir: Path) -> None:
    """Mark the folder as a run: the first file a new run gets, and what later commands know it by."""
    write_text(run_dir / MARKER, json.dumps({"lstm_textgen_run": 1, "version": __version__,
                                             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")


def trained_files(run_dir: Path) -> list[str]:
    """The files that show a run has trained (finished an epoch), as names relative to it."""
    found = [name for name in (MODEL, HISTORY) if (run_dir / name).is_file()]
    return found + [f"{CHECKPOINTS}/{p.name}" for p in epoch_checkpoints(run_dir)]


def remove_run_files(run_dir: Path, logs: list[str] = ()) -> None:
    """Delete a run's own files, and only those: the names is_ours() accepts and the TensorBoard event files the
    run recorded (logs, relative to run_dir); a folder of ours goes only once it is empty. Anything else a person
    put there stays, wherever it is."""
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    for folder in (CHECKPOINTS, TOKENS):
        if (run_dir / folder).is_dir():
            for path in (run_dir / folder).iterdir():
                if is_ours(folder, path.name) and (path.is_file() or path.is_symlink()):
                    path.unlink()
    for name in logs:
        path = run_dir / name
        if Path(name).parts[:1] == (TENSORBOARD,) and ".." not in Path(name).parts and path.is_file():
            path.unlink()
    for folder in ("", CHECKPOINTS, TOKENS):
        sweep_temporaries(run_dir, folder)
    log_folders = sorted({Path(name).parent for name in logs}, key=lambda p: -len(p.parts))
    for folder in (CHECKPOINTS, TOKENS, *log_folders, TENSORBOARD):
        with contextlib.suppress(OSError):
            (run_dir / folder).rmdir()  # only when empty


def sweep_temporaries(run_dir: Path, folder: str = "") -> None:
    """Delete the temporary files a killed write left in one of a run's folders ("" = the run directory)."""
    if (run_dir / folder).is_dir():
        remove_temporaries(run_dir / folder, lambda name: is_ours(folder, name))


def prepare_run_dir(run_dir: Path, new: bool) -> None:
    """Make a new run's folder and mark it (new), or clear a run's leftover temporaries; or say why it cannot
    be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if new or not (run_dir / MARKER).is_file():  # a run of 0.1 is marked the first time it trains again
            write_marker(run_dir)
        (run_dir / CHECKPOINTS).mkdir(exist_ok=True)
        for folder in ("", CHECKPOINTS, TOKENS):
            sweep_temporaries(run_dir, folder)
    except OSError as e:
        where = f" (writing {e.filename})" if e.filename and Path(e.filename) != run_dir else ""
        raise CheckpointError(f"cannot write to run directory {run_dir}: {e.strerror or e}{where}; free some space "
                              "or choose a writable --run") from None


def check_outside_corpus(run_dir: Path, corpus: str, what: str = "corpus") -> None:
    """Refuse a run directory that the corpus would read back (its samples.txt is text), or that holds it;
    what names the corpus in the error (the validation corpus, data.val_corpus, is checked the same way)."""
    clash = corpus_reads(corpus, Path(run_dir) / SAMPLES)
    if clash:
        raise CheckpointError(f"run directory {run_dir} {clash}, so the run's own {SAMPLES} would become part of "
                              f"the {what}; choose a --run outside it")
    if Path(corpus).is_file() and Path(run_dir).resolve() in Path(corpus).resolve().parents:
        raise CheckpointError(f"the {what} {corpus} is inside the run directory {run_dir}; move it out, or "
                              "choose another --run")


def check_no_runs_read(spec: str, what: str = "corpus") -> None:
    """Refuse a folder or glob of text that would read a run directory's files (its samples.txt is text, and
    a run is the program's output, not a person's writing); a file named on its own is read as given."""
    if Path(spec).expanduser().is_file():
        return
    kinds: dict[Path, bool] = {}
    for path in find_files(spec, what):
        for folder in path.resolve().parents:
            if folder not in kinds:
                kinds[folder] = folder_kind(folder) == "run"
            if kinds[folder]:
                raise CheckpointError(f"{what} {spec} reads the run directory {folder} ({path.name} is one of its "
                                      "files); give a folder or glob of your own text, with no run inside it")


def save_model(model, path: Path) -> None:
    """model.save() to a temporary .keras name, then rename: a reader never sees half a file."""
    with replacing(path, suffix=".keras") as tmp:
        model.save(tmp)


def save_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


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


def read_json(path: Path) -> dict:
    """A JSON object from a run's file, or a CheckpointError naming the file and what is wrong with it."""
    return atomic.read_json(path, CheckpointError)


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
