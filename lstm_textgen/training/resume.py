"""Resuming a run: whether it has finished, the learning rate it goes on with, and restoring a model to where
training stopped (its weights, optimizer moments, dropout seeds and carried streams), falling back to an epoch
checkpoint when the state's weights are damaged. What to resume is decided in plan.py."""
from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path

from lstm_textgen.atomic import replacing
from lstm_textgen.config import TrainConfig
from lstm_textgen.errors import CheckpointError
from lstm_textgen.run.files import CHECKPOINTS, MODEL, epoch_checkpoint
from lstm_textgen.run.state import TrainingState

log = logging.getLogger("lstm_textgen")

class Stopped(Exception):
    """Training was stopped (Ctrl-C, SIGTERM) after saving a resumable state."""

    def __init__(self, run_dir: Path, state: TrainingState):
        super().__init__(f"Stopped at epoch {state.progress.epoch + 1}, step {state.progress.step}; the state is saved: "
                         f"run the same command again to continue ({run_dir})")


def restore_best_model(run_dir: Path, state: TrainingState) -> None:
    """A resumed run whose model.keras was deleted gets its best epoch's checkpoint back as model.keras."""
    best = epoch_checkpoint(run_dir, state.best.best_epoch)
    if state.best.best_epoch and not (run_dir / MODEL).is_file() and best.is_file():
        with replacing(run_dir / MODEL, suffix=".keras") as tmp:
            shutil.copyfile(best, tmp)
        log.info(f"{run_dir / MODEL} was missing: copied back from {best}")


def finished(train: TrainConfig, state: TrainingState) -> bool:
    patience = train.early_stopping_patience
    stopped = state.patience.stopped_early and patience is not None and state.patience.wait >= patience
    return state.progress.step == 0 and (state.progress.epoch >= train.epochs or stopped or out_of_time(train, state))


def out_of_time(train: TrainConfig, state: TrainingState) -> bool:
    """train.max_minutes counts the time of every session of the run: a resumed run gets what is left."""
    minutes = train.max_minutes
    return minutes is not None and state.budget.spent_seconds >= minutes * 60.0


def current_learning_rate(state: TrainingState, configured: float) -> float:
    """The rate to resume with: the plateau schedule's, unless train.learning_rate was changed since."""
    if state.schedule.learning_rate is not None and state.schedule.started_learning_rate == configured:
        return state.schedule.learning_rate
    state.schedule.learning_rate, state.schedule.started_learning_rate, state.schedule.lr_wait = None, configured, 0
    return configured


def restore_state(models, run_dir: Path, state: TrainingState, learning_rate: float) -> None:
    """Load the weights, optimizer moments and dropout seeds of a saved state into freshly built models
    (model.Models); a stateful run's streams are put back by their owner (validation.Streams).

    If the saved state's weights are missing or damaged, training goes back to the newest epoch
    checkpoint that loads (its weights and optimizer state), and the state is rewound to that epoch.
    """
    model = models.training
    if not state.saved.weights and not state.progress.epoch:
        return
    model.optimizer.build(model.trainable_variables)
    path = run_dir / CHECKPOINTS / state.saved.weights if state.saved.weights else None
    if path is not None and _loads(models, path):
        for variable, value in zip(seed_states(model), state.saved.seeds):
            variable.assign(value)
    else:
        _fall_back(models, run_dir, state, path)
    model.optimizer.learning_rate = learning_rate  # a changed learning rate is a safe change


def _loads(models, path: Path) -> bool:
    try:
        models.load_weights(path)  # an epoch checkpoint of a stateful or tied run holds the plain stack
        return True
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return False


def _fall_back(models, run_dir: Path, state: TrainingState, damaged: Path | None) -> None:
    """Rewind to the newest epoch checkpoint that loads; with none, to the start."""
    for epoch in range(state.progress.epoch, 0, -1):
        checkpoint = epoch_checkpoint(run_dir, epoch)
        if checkpoint.is_file() and _loads(models, checkpoint):
            log.warning(f"warning: {damaged or 'the saved state'} is missing or corrupt; resuming from "
                        f"{checkpoint} (the end of epoch {epoch})")
            state.rewind(epoch)
            return
    if state.progress.epoch:  # check_restorable saw a checkpoint that looked whole; it does not load
        raise CheckpointError(f"cannot continue {run_dir}: {damaged or 'the saved state'} is missing or corrupt and "
                              f"no epoch checkpoint loads; its {MODEL} still generates: keep it and train a new run "
                              "with another --run, or pass --restart to delete it and start over")
    log.warning(f"warning: {damaged or 'the saved state'} is missing or corrupt and no epoch had finished; "
                "training starts again from epoch 1")
    state.rewind(0)


def seed_states(model) -> list:
    """The dropout seed-generator variables, in layer order (their names carry a process-wide counter)."""
    return [v for v in model.variables if "seed_generator_state" in v.path]
