"""The training state (checkpoints/state.json): where training stands, saved last so it is the commit point, in
parts, each owned by the one that writes and rewinds it: the progress (callbacks.StepCounter), the best epoch
(BestModel), the patience (EarlyStop), the learning-rate schedule (schedules.py), the time budget (TimeBudget),
the saved weights (Backup), the carried streams of stateful training (validation.Streams) and the
TensorBoard logs (monitor.py). The file keeps one flat object of every part's fields, as it always had; read back,
every field's type is checked. Also: whether the weights file a state names is whole."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from lstm_textgen.errors import CheckpointError
from lstm_textgen.run.files import CHECKPOINTS, STATE, read_json, save_json


@dataclass
class Progress:
    """Where training stands (StepCounter's)."""
    epoch: int = 0  # epochs completed
    step: int = 0  # steps done in the epoch under way
    global_step: int = 0
    tokens_seen: int = 0
    train_seconds: float = 0.0
    rows: list = field(default_factory=list)  # history.csv rows of the completed epochs
    partial: dict = field(default_factory=dict)  # loss/accuracy sums and seconds of the epoch under way
    epoch_ends: list = field(default_factory=list)  # [global_step, tokens_seen, train_seconds] after each epoch

    def rewind(self, rows: list, epoch: int) -> None:
        self.rows, self.epoch_ends = rows, self.epoch_ends[:epoch]
        self.global_step, self.tokens_seen, self.train_seconds = self.epoch_ends[-1] if epoch else (0, 0, 0.0)
        self.epoch, self.step, self.partial = epoch, 0, {}


@dataclass
class Best:
    """The epoch with the lowest val_loss so far, the one model.keras holds (BestModel's)."""
    best_loss: float | None = None
    best_epoch: int = 0

    def rewind(self, rows: list, epoch: int) -> None:
        losses = [(row["val_loss"], row["epoch"]) for row in rows if row.get("val_loss") is not None]
        self.best_loss, self.best_epoch = min(losses) if losses else (None, 0)


@dataclass
class Patience:
    """Epochs since val_loss last improved, and whether early stopping ended the run (EarlyStop's)."""
    wait: int = 0
    stopped_early: bool = False

    def rewind(self, rows: list, epoch: int) -> None:
        losses = [(row["val_loss"], row["epoch"]) for row in rows if row.get("val_loss") is not None]
        self.wait, self.stopped_early = epoch - (min(losses)[1] if losses else 0), False


@dataclass
class Schedule:
    """The learning-rate schedule where it stands (schedules.Plateau's and Decay's)."""
    learning_rate: float | None = None  # the plateau schedule's current rate; None = train.learning_rate
    started_learning_rate: float | None = None  # train.learning_rate when the schedule last set the rate
    lr_wait: int = 0  # epochs since val_loss improved or the rate last dropped
    lr_best: float | None = None  # its best val_loss: lower by less than its min_delta does not count
    lr_scales: list = field(default_factory=list)  # the plateau rule with lr_decay: the curve's scale after each epoch

    def rewind(self, rows: list, epoch: int) -> None:
        rates = [row.get("learning_rate") for row in rows]  # the rate the epoch checkpoint trained with
        self.learning_rate = rates[-1] if rates and rates[-1] is not None else None
        self.lr_wait, self.lr_scales = 0, self.lr_scales[:epoch]
        losses = [row["val_loss"] for row in rows if row.get("val_loss") is not None]
        self.lr_best = min(losses) if losses else None


@dataclass
class Budget:
    """Wall time inside fit(), validation included, over every session of the run (TimeBudget's)."""
    spent_seconds: float = 0.0

    def rewind(self, rows: list, epoch: int) -> None:
        self.spent_seconds = sum(row.get("seconds") or 0.0 for row in rows)


@dataclass
class Saved:
    """The weights and optimizer state saved at the progress's global_step, and the dropout seeds (Backup's)."""
    weights: str | None = None  # its file under checkpoints/
    seeds: list = field(default_factory=list)  # dropout seed-generator states, in layer order

    def rewind(self, rows: list, epoch: int) -> None:
        self.weights, self.seeds = None, []


@dataclass
class Streams:
    """Stateful training: the recurrent state of every stream after the last step (validation.Streams')."""
    carried: list = field(default_factory=list)

    def rewind(self, rows: list, epoch: int) -> None:
        self.carried = []  # an epoch checkpoint ends an epoch, where the streams start afresh


@dataclass
class Logs:
    """The TensorBoard event files the run started, which --restart removes (monitor.RecordedTensorBoard's)."""
    logs: list = field(default_factory=list)

    def rewind(self, rows: list, epoch: int) -> None:
        pass  # the files stay the run's


PARTS = {"progress": Progress, "best": Best, "patience": Patience, "schedule": Schedule, "budget": Budget,
         "saved": Saved, "streams": Streams, "logs": Logs}


@dataclass
class TrainingState:
    """Where training stands: enough to continue exactly where it stopped, a part per owner."""
    progress: Progress = field(default_factory=Progress)
    best: Best = field(default_factory=Best)
    patience: Patience = field(default_factory=Patience)
    schedule: Schedule = field(default_factory=Schedule)
    budget: Budget = field(default_factory=Budget)
    saved: Saved = field(default_factory=Saved)
    streams: Streams = field(default_factory=Streams)
    logs: Logs = field(default_factory=Logs)

    def rewind(self, epoch: int) -> None:
        """Go back to the end of `epoch` (0 = the start), as saved in its epoch checkpoint: each part its own."""
        rows = self.progress.rows[:epoch]
        for name in PARTS:
            getattr(self, name).rewind(rows, epoch)

    def save(self, run_dir: Path) -> None:
        save_json(run_dir / CHECKPOINTS / STATE, {k: v for name in PARTS for k, v in dataclasses.asdict(
            getattr(self, name)).items()})

    @classmethod
    def load(cls, run_dir: Path) -> "TrainingState | None":
        """The saved state, or None when training never saved one; a damaged one is a CheckpointError."""
        path = run_dir / CHECKPOINTS / STATE
        if not path.exists() and not path.is_symlink():
            return None
        raw = read_json(path)
        owned = {f.name for part in PARTS.values() for f in dataclasses.fields(part)}
        if set(raw) - owned:
            raise CheckpointError(f"{path} is damaged (its fields are not a training state's)")
        state = cls(**{name: part(**{f.name: raw[f.name] for f in dataclasses.fields(part) if f.name in raw})
                       for name, part in PARTS.items()})
        for name, part in PARTS.items():  # each value of its field's type
            for key, hint in typing.get_type_hints(part).items():
                value, kinds = getattr(getattr(state, name), key), typing.get_args(hint) or (hint,)
                kinds = (*kinds, int) if float in kinds else kinds  # JSON writes 2.0 as 2
                if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                    raise CheckpointError(f"{path} is damaged ({key} is {type(value).__name__})")
        return state  # a missing or damaged weights file is handled by restore_state


def recorded_logs(run_dir: Path) -> list[str]:
    """The TensorBoard event files a run's saved state records; none when it has no readable state."""
    try:
        state = TrainingState.load(run_dir)
    except CheckpointError:
        return []
    return [name for name in state.logs.logs if isinstance(name, str)] if state else []


def is_hdf5(path: Path) -> bool:
    """Whether path is a whole HDF5 file (a .weights.h5 that can be loaded; one cut short does not open), read
    without TensorFlow."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "layers" in f  # Keras 3's .weights.h5: a group per layer
    except (OSError, ValueError):
        return False
