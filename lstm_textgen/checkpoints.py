"""The run directory: its file names, saving config/model atomically, and load_run() for generate/evaluate."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from lstm_textgen import __version__
from lstm_textgen.atomic import remove_temporaries, replacing, write_text
from lstm_textgen.config import Config, check_saved_meta, config_yaml, load_config, read_yaml
from lstm_textgen.errors import CheckpointError, ConfigError
from lstm_textgen.tokenizer import Tokenizer

CONFIG, TOKENIZER, MODEL = "config.yaml", "tokenizer.json", "model.keras"
HISTORY, METRICS, CHECKPOINTS = "history.csv", "metrics.json", "checkpoints"
SAMPLES, CURVES, TENSORBOARD = "samples.txt", "curves.png", "tensorboard"  # written by monitor.py
STATE = "state.json"  # under checkpoints/: where training stands; written last, so it is the commit point
# Keys that may change between a run and its resumption; any other change is refused.
SAFE_TO_CHANGE = {"train.epochs", "train.max_minutes", "train.early_stopping_patience", "train.learning_rate", "train.clipnorm",
                  "train.global_clipnorm",
                  "train.keep_checkpoints", "train.backup_every_steps", "train.steps_per_epoch", "train.run_dir",
                  "train.sample_every", "train.sample_seed", "train.sample_length", "train.tensorboard",
                  "data.corpus", "generate.length", "generate.temperature", "generate.top_k", "generate.top_p"}


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run directory (and checkpoints/) or say why it cannot be written."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CheckpointError(f"run directory {run_dir} is a file; choose another --run")
    try:
        (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
        for folder in (run_dir, run_dir / CHECKPOINTS, run_dir / "tokens"):
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


def check_run_dir(run_dir: Path) -> None:
    """Refuse a folder that is not a trained run, naming what is missing and what to run."""
    if not run_dir.exists():
        raise CheckpointError(f"run directory {run_dir} does not exist; train one with: "
                              f"lstm-textgen train --run {run_dir}")
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is a file, not a run directory; pass the folder that train wrote")
    if not (run_dir / CONFIG).is_file() or not (run_dir / TOKENIZER).is_file():
        raise CheckpointError(f"{run_dir} is not an lstm-textgen run directory (no {CONFIG} or {TOKENIZER}); "
                              f"train one with: lstm-textgen train --run {run_dir}")
    if not (run_dir / MODEL).is_file():
        raise CheckpointError(f"{run_dir} has no {MODEL} (training has not finished an epoch); "
                              f"train it with: lstm-textgen train --run {run_dir}")


def load_saved_config(run_dir: Path) -> Config:
    path = run_dir / CONFIG
    check_saved_meta(read_yaml(path, "run config"), path)
    try:
        return load_config(path)
    except ConfigError as e:
        raise CheckpointError(f"{path} is not a valid run config ({e}); retrain the run") from None


@dataclass
class TrainingState:
    """Where training stands: enough to continue exactly where it stopped."""
    epoch: int = 0  # epochs completed
    step: int = 0  # steps done in the epoch under way
    global_step: int = 0
    weights: str | None = None  # checkpoints/ file with the weights and the optimizer state at global_step
    seeds: list = field(default_factory=list)  # dropout seed-generator states, in layer order
    rows: list = field(default_factory=list)  # history.csv rows of the completed epochs
    best_loss: float | None = None
    best_epoch: int = 0
    wait: int = 0  # epochs since val_loss last improved (early stopping)
    stopped_early: bool = False
    tokens_seen: int = 0
    train_seconds: float = 0.0
    partial: dict = field(default_factory=dict)  # loss/accuracy sums and seconds of the epoch under way
    epoch_ends: list = field(default_factory=list)  # [global_step, tokens_seen, train_seconds] after each epoch
    learning_rate: float | None = None  # the plateau schedule's current rate; None = train.learning_rate
    started_learning_rate: float | None = None  # train.learning_rate when the schedule last set the rate
    lr_wait: int = 0  # epochs since val_loss improved or the rate last dropped (the plateau schedule)
    lr_best: float | None = None  # the plateau schedule's best val_loss: lower by less than its min_delta does not count
    carried: list = field(default_factory=list)  # stateful runs: the recurrent state after the last step
    spent_seconds: float = 0.0  # wall time inside fit(), validation included, over all resumes (train.max_minutes)

    def rewind(self, epoch: int) -> None:
        """Go back to the end of `epoch` (0 = the start), as saved in its epoch checkpoint."""
        self.rows, self.epoch_ends = self.rows[:epoch], self.epoch_ends[:epoch]
        self.global_step, self.tokens_seen, self.train_seconds = self.epoch_ends[-1] if epoch else (0, 0, 0.0)
        self.epoch, self.step, self.partial, self.weights, self.seeds = epoch, 0, {}, None, []
        self.carried, self.lr_wait = [], 0
        self.spent_seconds = sum(row.get("seconds") or 0.0 for row in self.rows)
        rates = [row.get("learning_rate") for row in self.rows]  # the rate the epoch checkpoint trained with
        self.learning_rate = rates[-1] if rates and rates[-1] is not None else None
        losses = [(row["val_loss"], row["epoch"]) for row in self.rows if row.get("val_loss") is not None]
        self.best_loss, self.best_epoch = min(losses) if losses else (None, 0)
        self.lr_best = self.best_loss
        self.wait, self.stopped_early = epoch - self.best_epoch, False

    def save(self, run_dir: Path) -> None:
        save_json(run_dir / CHECKPOINTS / STATE, dataclasses.asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> "TrainingState | None":
        """The saved state, or None when training never saved one; a damaged one is named."""
        path = run_dir / CHECKPOINTS / STATE
        if not path.exists():
            return None
        try:
            state = cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path} is corrupt ({type(e).__name__}); start over with --restart") from None
        return state  # a missing or damaged weights file is handled by callbacks.restore_state


def config_changes(old: Config, new: Config) -> tuple[list[str], list[str]]:
    """(refused, allowed) differences between a saved run config and a new one, as 'key (old -> new)'."""
    refused, allowed = [], []
    old_d, new_d = old.to_dict(), new.to_dict()
    for section, values in new_d.items():
        for key, value in values.items():
            before = old_d[section][key]
            if before != value and f"{section}.{key}" != "train.run_dir":  # a run may be moved or copied
                entry = f"{section}.{key} ({before!r} -> {value!r})"
                (allowed if f"{section}.{key}" in SAFE_TO_CHANGE else refused).append(entry)
    return refused, allowed


@dataclass
class ModelWeights:
    """The trained stack as numpy arrays, read from model.keras without TensorFlow."""
    layers: list[dict]  # [{"class_name": "LSTM", "config": {...}, "weights": [arrays]}], Input layer excluded
    extra: dict = field(default_factory=dict)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def read_model_weights(path: Path) -> ModelWeights:
    """Read config.json and model.weights.h5 from a .keras zip into numpy arrays."""
    import h5py

    try:
        with zipfile.ZipFile(path) as archive:
            spec = json.loads(archive.read("config.json"))
            h5_bytes = archive.read("model.weights.h5")
        layers = []
        with h5py.File(io.BytesIO(h5_bytes), "r") as h5:
            seen: dict[str, int] = {}
            for layer in spec["config"]["layers"]:
                if layer["class_name"] == "InputLayer":
                    continue
                base = _snake(layer["class_name"])
                key = base if base not in seen else f"{base}_{seen[base]}"  # Keras numbers repeats _1, _2, ...
                seen[base] = seen.get(base, 0) + 1
                group = h5["layers"][key]
                layers.append({"class_name": layer["class_name"], "config": layer["config"],
                               "weights": _group_weights(group)})
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as e:
        raise CheckpointError(f"{path} is corrupt or not a Keras model ({type(e).__name__}); "
                              f"retrain, or copy back a checkpoint from {path.parent / CHECKPOINTS}") from None
    return ModelWeights(layers)


def _group_weights(group) -> dict:
    """{'vars': [arrays]} for plain layers; nested dicts for cells and Bidirectional halves."""
    out: dict = {}
    for name, item in group.items():
        if name == "vars":
            out["vars"] = [item[str(i)][()] for i in range(len(item))]
        else:
            out[name] = _group_weights(item)
    return out


class Run:
    """A trained run directory: .config, .tokenizer, and lazily .model (Keras) and .weights (numpy)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        check_run_dir(self.run_dir)
        self.config = load_saved_config(self.run_dir)
        self.tokenizer = Tokenizer.load(self.run_dir / TOKENIZER)

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
        path = self.run_dir / METRICS
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}


def load_run(run_dir: str | os.PathLike) -> Run:
    """Open a run directory for generation or evaluation; errors name what is missing."""
    return Run(Path(run_dir))
