"""The training state: where training stands (checkpoints/state.json), saved last so it is the commit point,
read back with every field's type checked; and whether the weights file it names is whole."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from lstm_textgen.errors import CheckpointError
from lstm_textgen.run.rundir import CHECKPOINTS, STATE, read_json, save_json


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
    lr_scales: list = field(default_factory=list)  # plateau rule with lr_decay: the curve's scale after each epoch
    carried: list = field(default_factory=list)  # stateful runs: the recurrent state after the last step
    spent_seconds: float = 0.0  # wall time inside fit(), validation included, over all resumes (train.max_minutes)
    logs: list = field(default_factory=list)  # TensorBoard event files the run started (--restart removes these)

    def rewind(self, epoch: int) -> None:
        """Go back to the end of `epoch` (0 = the start), as saved in its epoch checkpoint."""
        self.rows, self.epoch_ends = self.rows[:epoch], self.epoch_ends[:epoch]
        self.global_step, self.tokens_seen, self.train_seconds = self.epoch_ends[-1] if epoch else (0, 0, 0.0)
        self.epoch, self.step, self.partial, self.weights, self.seeds = epoch, 0, {}, None, []
        self.carried, self.lr_wait, self.lr_scales = [], 0, self.lr_scales[:epoch]
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
        """The saved state, or None when training never saved one; a damaged one is a CheckpointError."""
        path = run_dir / CHECKPOINTS / STATE
        if not path.exists() and not path.is_symlink():
            return None
        raw = read_json(path)
        try:
            state = cls(**raw)
        except TypeError:
            raise CheckpointError(f"{path} is damaged (its fields are not a training state's)") from None
        for name, hint in typing.get_type_hints(cls).items():  # each value of its field's type
            value, kinds = getattr(state, name), typing.get_args(hint) or (hint,)
            kinds = (*kinds, int) if float in kinds else kinds  # JSON writes 2.0 as 2
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise CheckpointError(f"{path} is damaged ({name} is {type(value).__name__})")
        return state  # a missing or damaged weights file is handled by restore_state


def recorded_logs(run_dir: Path) -> list[str]:
    """The TensorBoard event files a run's saved state records; none when it has no readable state."""
    try:
        state = TrainingState.load(run_dir)
    except CheckpointError:
        return []
    return [name for name in state.logs if isinstance(name, str)] if state else []


def is_hdf5(path: Path) -> bool:
    """Whether path is a whole HDF5 file (a .weights.h5 that can be loaded; one cut short does not open), read
    without TensorFlow."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "layers" in f  # Keras 3's .weights.h5: a group per layer
    except (OSError, ValueError):
        return False
