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
from lstm_textgen.config import META_KEY, Config, load_config
from lstm_textgen.stamp import check_saved_meta, config_yaml
from lstm_textgen.corpus import corpus_reads
from lstm_textgen.errors import CheckpointError, ConfigError, TextgenError, TokenizerError
from lstm_textgen.fast.h5 import ModelWeights, read_model_weights
from lstm_textgen.tokenizer import AnyTokenizer, load_tokenizer as read_tokenizer
from lstm_textgen.values import read_yaml

MARKER = "lstm-textgen-run.json"  # written first into every run directory: what makes a folder a run
CONFIG, TOKENIZER, MODEL = "config.yaml", "tokenizer.json", "model.keras"
HISTORY, METRICS, CHECKPOINTS, TOKENS = "history.csv", "metrics.json", "checkpoints", "tokens"
SAMPLES, CURVES, TENSORBOARD = "samples.txt", "curves.png", "tensorboard"  # written by monitor.py
LOCK = ".lstm-textgen-lock"  # held while a training runs in the directory (runlock.py)
STATE = "state.json"  # under checkpoints/: where training stands; written last, so it is the commit point
STATE_WEIGHTS = "state_*.weights.h5"  # under checkpoints/: the weights and optimizer state state.json names
# What a run directory may hold of ours, and inside our folders, the names we write: nothing else is ever removed.
RUN_FILES = (MARKER, CONFIG, TOKENIZER, MODEL, HISTORY, METRICS, SAMPLES, CURVES, LOCK)
RUN_FOLDERS = {CHECKPOINTS: ("epoch_*.keras", STATE, STATE_WEIGHTS), TOKENS: ("train.npy", "val.npy", "manifest.json"),
               TENSORBOARD: ("train/events.out.tfevents.*", "validation/events.out.tfevents.*", "train", "validation")}
# lstm-textgen 0.1's temporary files: "." + one of its own file names + "." + 8 random characters + a suffix
LEGACY_TEMPORARY = re.compile(r"^\.(config\.yaml|tokenizer\.json|model\.keras|history\.csv|metrics\.json|samples\.txt|"
                              r"curves\.png|state\.json|manifest\.json|train\.npy|val\.npy|epoch_\d{3}\.keras|"
                              r"state_\d{9}\.weights\.h5)\.[a-z0-9_]{8}(\.tmp|\.keras|\.weights\.h5|\.npy|\.png)$")


def epoch_checkpoint(run_dir: Path, epoch: int) -> Path:
    """checkpoints/epoch_NNN.keras: the plain model as it stood at the end of that epoch."""
    return Path(run_dir) / CHECKPOINTS / f"epoch_{epoch:03d}.keras"


def epoch_checkpoints(run_dir: Path) -> list[Path]:
    """The epoch checkpoints present, oldest first."""
    return sorted((Path(run_dir) / CHECKPOINTS).glob("epoch_*.keras"))


def state_weights_name(global_step: int) -> str:
    """The name (under checkpoints/) of the weights file saved at a global step; matches STATE_WEIGHTS."""
    return f"state_{global_step:09d}.weights.h5"


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


def remove_run_files(run_dir: Path) -> None:
    """Delete a run's own files, and only those: our file names, and our names inside our folders (a folder
    left empty goes too). Anything else a person put there stays."""
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    for folder, patterns in RUN_FOLDERS.items():
        for pattern in patterns:
            for path in sorted((run_dir / folder).glob(pattern), reverse=True):
                if path.is_dir() and not path.is_symlink():
                    with contextlib.suppress(OSError):
                        path.rmdir()  # only when empty
                elif path.is_file() or path.is_symlink():
                    path.unlink()
        sweep_temporaries(run_dir / folder)
        with contextlib.suppress(OSError):
            (run_dir / folder).rmdir()
    sweep_temporaries(run_dir)


def sweep_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed write left in one of a run's folders."""
    if folder.is_dir():
        remove_temporaries(folder, LEGACY_TEMPORARY)


def prepare_run_dir(run_dir: Path, new: bool) -> None:
    """Make a new run's folder and mark it (new), or clear a run's leftover temporaries; or say why it cannot
    be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if new or not (run_dir / MARKER).is_file():  # a run of 0.1 is marked the first time it trains again
            write_marker(run_dir)
        (run_dir / CHECKPOINTS).mkdir(exist_ok=True)
        for folder in (run_dir, run_dir / CHECKPOINTS, run_dir / TOKENS):
            sweep_temporaries(folder)
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


def save_config(run_dir: Path, config: Config, origin: dict | None = None) -> None:
    write_text(run_dir / CONFIG, config_yaml(config, __version__, origin))


def save_model(model, path: Path) -> None:
    """model.save() to a temporary .keras name, then rename: a reader never sees half a file."""
    with replacing(path, suffix=".keras") as tmp:
        model.save(tmp)


def save_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def check_run_files(run_dir: Path) -> None:
    """Refuse a folder that is not a run directory (trained or not), naming what is wrong and what to do."""
    kind = folder_kind(run_dir)
    if kind == "absent":
        raise CheckpointError(f"run directory {run_dir} does not exist; train one with: "
                              f"lstm-textgen train CORPUS --run {run_dir} (lstm-textgen runs lists the runs)")
    if kind == "file":
        raise CheckpointError(f"{run_dir} is a file, not a run directory; pass the folder that train wrote")
    if kind != "run":
        raise CheckpointError(f"{run_dir} is not an lstm-textgen run directory (it has no {MARKER}); pass the "
                              "folder that train wrote (lstm-textgen runs lists the runs)")
    for name in (CONFIG, TOKENIZER):
        if not (run_dir / name).is_file():
            raise CheckpointError(f"{run_dir / name} is missing{_dangling(run_dir / name)}, and the run cannot be "
                                  "used without it; copy it back from a backup of the run, or train a new run")


def _dangling(path: Path) -> str:
    return " (a link to a file that is gone)" if path.is_symlink() and not path.exists() else ""


def check_run_dir(run_dir: Path) -> None:
    """Refuse a folder that is not a trained run, naming what is missing and what to run."""
    check_run_files(run_dir)
    if (run_dir / MODEL).is_file():
        return
    best = read_metrics(run_dir).get("best_epoch")
    checkpoint = epoch_checkpoint(run_dir, best) if isinstance(best, int) and best > 0 else None
    if checkpoint is not None and checkpoint.is_file():
        raise CheckpointError(f"{run_dir / MODEL} is missing{_dangling(run_dir / MODEL)}; its best epoch is "
                              f"saved: copy it back with: cp {checkpoint} {run_dir / MODEL}")
    if trained_files(run_dir):
        raise CheckpointError(f"{run_dir / MODEL} is missing{_dangling(run_dir / MODEL)}; train the run on with: "
                              f"lstm-textgen train --run {run_dir}")
    raise CheckpointError(f"{run_dir} has no {MODEL} yet (training has not finished an epoch); continue its "
                          f"training with: lstm-textgen train --run {run_dir}")


def read_json(path: Path) -> dict:
    """A JSON object from a run's file, or a CheckpointError naming the file and what is wrong with it."""
    return atomic.read_json(path, CheckpointError)


def read_metrics(run_dir: Path) -> dict:
    """metrics.json's figures that have the right type; {} while no epoch has ended (or when it is damaged:
    training rewrites it after every epoch)."""
    try:
        metrics = read_json(Path(run_dir) / METRICS)
    except CheckpointError:
        return {}
    numbers = ("best_val_perplexity", "best_val_loss", "best_val_bits_per_char", "tokens_per_second",
               "windows_per_second")
    counts = ("epochs", "best_epoch", "tokens_seen", "train_tokens", "val_tokens", "val_chars", "vocab_size",
              "parameters")
    return {k: v for k, v in metrics.items()
            if (k not in numbers or _is_number(v)) and (k not in counts or (isinstance(v, int) and v >= 0))}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_tokenizer(run_dir: Path) -> AnyTokenizer:
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
