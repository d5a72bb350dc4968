"""The run directory: every path and file name in it, saving config/model atomically, and Run / load_run()."""
from __future__ import annotations

import json
import os
import zipfile
from functools import cached_property
from pathlib import Path

from lstm_textgen import __version__
from lstm_textgen.atomic import remove_temporaries, replacing, write_text
from lstm_textgen.config import Config, check_saved_meta, config_yaml, load_config, read_yaml
from lstm_textgen.errors import CheckpointError, ConfigError, TokenizerError
from lstm_textgen.fast.h5 import ModelWeights, read_model_weights
from lstm_textgen.tokenizer import Tokenizer

CONFIG, TOKENIZER, MODEL = "config.yaml", "tokenizer.json", "model.keras"
HISTORY, METRICS, CHECKPOINTS, TOKENS = "history.csv", "metrics.json", "checkpoints", "tokens"
SAMPLES, CURVES, TENSORBOARD = "samples.txt", "curves.png", "tensorboard"  # written by monitor.py
STATE = "state.json"  # under checkpoints/: where training stands; written last, so it is the commit point
STATE_WEIGHTS = "state_*.weights.h5"  # under checkpoints/: the weights and optimizer state state.json names
RUN_FILES = (CONFIG, TOKENIZER, MODEL, HISTORY, METRICS, CHECKPOINTS, TOKENS, SAMPLES, CURVES, TENSORBOARD)


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


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run directory (and checkpoints/) or say why it cannot be written."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CheckpointError(f"run directory {run_dir} is a file; choose another --run")
    try:
        (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
        for folder in (run_dir, run_dir / CHECKPOINTS, run_dir / TOKENS):
            if folder.is_dir():
                remove_temporaries(folder)
    except OSError as e:
        raise CheckpointError(f"cannot write to run directory {run_dir}: {e.strerror or e}; "
                              "choose a writable --run") from None


def save_config(run_dir: Path, config: Config) -> None:
    write_text(run_dir / CONFIG, config_yaml(config, __version__))


def save_model(model, path: Path) -> None:
    """model.save() to a temporary .keras name, then rename: a reader never sees half a file."""
    with replacing(path, suffix=".keras") as tmp:
        model.save(tmp)


def save_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def check_run_files(run_dir: Path) -> None:
    """Refuse a folder that is not a run directory (trained or not), naming what is missing."""
    if not run_dir.exists():
        raise CheckpointError(f"run directory {run_dir} does not exist; train one with: "
                              f"lstm-textgen train --run {run_dir}")
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is a file, not a run directory; pass the folder that train wrote")
    if not (run_dir / CONFIG).is_file() or not (run_dir / TOKENIZER).is_file():
        raise CheckpointError(f"{run_dir} is not an lstm-textgen run directory (no {CONFIG} or {TOKENIZER}); "
                              f"train one with: lstm-textgen train --run {run_dir}")


def check_run_dir(run_dir: Path) -> None:
    """Refuse a folder that is not a trained run, naming what is missing and what to run."""
    check_run_files(run_dir)
    if not (run_dir / MODEL).is_file():
        raise CheckpointError(f"{run_dir} has no {MODEL} (training has not finished an epoch); "
                              f"train it with: lstm-textgen train --run {run_dir}")


def read_metrics(run_dir: Path) -> dict:
    """metrics.json as a dict; {} while no epoch has ended (or when it is unreadable)."""
    try:
        metrics = json.loads((Path(run_dir) / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def load_tokenizer(run_dir: Path) -> Tokenizer:
    """The run's tokenizer.json; a missing or damaged one is named with what to do."""
    try:
        return Tokenizer.load(Path(run_dir) / TOKENIZER)
    except TokenizerError as e:
        raise CheckpointError(f"{e}: the run cannot encode or decode text without it; train the run again") from None


def load_saved_config(run_dir: Path) -> Config:
    path = run_dir / CONFIG
    check_saved_meta(read_yaml(path, "run config"), path)
    try:
        return load_config(path)
    except ConfigError as e:
        raise CheckpointError(f"{path} is not a valid run config ({e}); retrain the run") from None


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
