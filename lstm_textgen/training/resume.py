"""Resuming a run: the config a train command means, the training state, what may change on resume,
start-or-resume, and restoring a model to where training stopped (falling back to an epoch checkpoint when
the state's weights are damaged)."""
from __future__ import annotations

import contextlib
import filecmp
import json
import logging
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lstm_textgen.atomic import replacing
from lstm_textgen.config import SECTIONS, Config, load_config
from lstm_textgen.config.setting import policy
from lstm_textgen.run.curves import read_history
from lstm_textgen.text.corpus import find_files
from lstm_textgen.errors import CheckpointError, TextgenError
from lstm_textgen.training.finetune import base_settings
from lstm_textgen.run.rundir import (CHECKPOINTS, MODEL, STATE, TOKENS, epoch_checkpoint, folder_kind, load_saved_config,
                                 read_metrics, saved_config_values, trained_files)
from lstm_textgen.run.state import TrainingState, is_hdf5
from lstm_textgen.text.cache import MANIFEST
from lstm_textgen.config.values import command, run_name, shown

log = logging.getLogger("lstm_textgen")

def training_config(path, overrides, values: dict, restart: bool = False) -> Config:
    """The config a train command means: defaults, file, --set and flags; for a run that exists (and is not
    being restarted), its own saved settings take the defaults' place, so `train --run DIR` continues it; for
    a new run with train.init_from (--from), the base run's settings do (finetune.base_settings)."""
    config = load_config(path, overrides, values)
    if not restart and folder_kind(config.run_dir) == "run":
        return load_config(path, overrides, values, base=saved_config_values(config.run_dir))
    if config.train.init_from:
        return load_config(path, overrides, values, base=base_settings(config.train.init_from))
    return config


def config_changes(old: Config, new: Config) -> tuple[list[str], list[str]]:
    """(refused, allowed) differences between a saved run config and a new one, as 'key (old -> new)'."""
    refused, allowed = [], []
    old_d, new_d = old.to_dict(), new.to_dict()
    for section, values in new_d.items():
        for key, value in values.items():
            before = old_d[section][key]
            if before != value and f"{section}.{key}" != "train.run_dir":  # a run may be moved or copied
                entry = f"{section}.{key} ({shown(before)} -> {shown(value)})"
                safe = policy(SECTIONS[section], key).resume  # declared on the setting (config/)
                (allowed if safe else refused).append(entry)
    return refused, allowed


class Stopped(Exception):
    """Training was stopped (Ctrl-C, SIGTERM) after saving a resumable state."""

    def __init__(self, run_dir: Path, state: TrainingState):
        super().__init__(f"Stopped at epoch {state.epoch + 1}, step {state.step}; the state is saved: "
                         f"run the same command again to continue ({run_dir})")


@dataclass
class Plan:
    """What train() will do with the run directory; nothing is written until every input has been checked."""
    state: TrainingState | None  # the state to resume, or None for a new run
    new: bool = False  # the folder is made (or an empty one used) and marked as a run
    restart: bool = False  # the run's own files go first (--restart)
    done: str = ""  # why there is nothing to do, or ""


def plan_run(config: Config, run_dir: Path, mode: str) -> Plan:
    """Decide between a new run, a resumed one, a restart and nothing to do; refuse a folder that is not ours.

    mode: "auto" continues a run already in the directory (or starts one), "resume" insists on continuing,
    "restart" starts over (the run's own files are removed only once the whole command has checked out).
    """
    kind = folder_kind(run_dir)
    if kind == "file":
        raise CheckpointError(f"run directory {run_dir} is a file; choose another --run")
    if kind == "other":
        names = ", ".join(sorted(p.name for p in run_dir.iterdir())[:3])
        raise CheckpointError(f"{run_dir} is not an lstm-textgen run directory and is not empty (it holds {names}, "
                              "...); train into a new or empty folder with --run (nothing was written)")
    if kind in ("absent", "empty") or mode == "restart":
        if mode == "resume":
            raise CheckpointError(f"{run_dir} has no run to resume; drop --resume to start a new run")
        log.info(f"Starting over in {run_dir} (--restart): the run's own files are removed once the corpus and "
                 "config check out" if kind == "run" else f"Starting a new run in {run_dir}")
        return Plan(None, new=kind != "run", restart=kind == "run")
    try:
        state = TrainingState.load(run_dir)
    except CheckpointError as e:
        return _without_state(config, run_dir, str(e))
    if state is None:
        if trained_files(run_dir):
            return _without_state(config, run_dir, f"its training state {run_dir / CHECKPOINTS / STATE} is missing")
        if mode == "resume":
            raise CheckpointError(f"{run_dir} has no training state to resume; drop --resume to start the run")
        log.info(f"Starting the run in {run_dir} (it has not trained yet)")
        return Plan(None)
    saved = load_saved_config(run_dir)
    changes, allowed = config_changes(saved, config)
    if changes:
        raise CheckpointError(f"cannot resume {run_dir}: the config differs in {', '.join(changes)}; keep the old "
                              "values, or train a new run with another --run")
    if finished(config, state):
        check_same_corpus(run_dir, saved.data.corpus, config.data.corpus)
        why = (" and spent train.max_minutes" if out_of_time(config, state)
               else " and stopped early" if state.stopped_early else "")
        return Plan(state, done=f"{run_dir} has already trained {state.epoch} epochs{why}; nothing to do (raise "
                                f"--set train.epochs or train.max_minutes to train longer)")
    check_restorable(run_dir, state)
    log.info(f"Resuming {run_dir} from epoch {state.epoch + 1}, step {state.step} "
             f"(global step {state.global_step})" + (f"; changed: {', '.join(allowed)}" if allowed else ""))
    return Plan(state)


def check_restorable(run_dir: Path, state: TrainingState) -> None:
    """Refuse, before anything is written, to continue a run that has finished an epoch when neither the weights
    its state names nor any epoch checkpoint can be read: it would start over, and overwrite its model.keras."""
    weights = run_dir / CHECKPOINTS / state.weights if state.weights else None
    if not state.epoch or (weights is not None and is_hdf5(weights)):
        return
    if any(zipfile.is_zipfile(epoch_checkpoint(run_dir, epoch)) for epoch in range(state.epoch, 0, -1)):
        return  # restore_state goes back to the newest that loads, and says so
    what = f"{weights} is missing or damaged" if weights is not None else "its state names no weights"
    raise CheckpointError(f"cannot continue {run_dir}: {what}, and no epoch checkpoint can be read, so its "
                          f"{state.epoch} trained epochs would start over; its {MODEL} still generates: keep it and "
                          "train a new run with another --run, or pass --restart to delete it and start over")


def _without_state(config: Config, run_dir: Path, what: str) -> Plan:
    """A run that has trained but whose training state is gone: finished is nothing to do; else say so."""
    epochs = len(read_history(run_dir).get("epoch", []))
    if epochs >= config.train.epochs or read_metrics(run_dir).get("stopped_early") is True:
        check_same_corpus(run_dir, load_saved_config(run_dir).data.corpus, config.data.corpus)
        return Plan(None, done=f"{run_dir} has already trained {epochs} epochs; nothing to do")
    raise CheckpointError(f"{run_dir} has trained {epochs} epochs but {what}, so it cannot continue exactly where "
                          f"it stopped (its {MODEL} still generates); keep it and train a new run with another --run, "
                          "or pass --restart to delete it and start over")


def check_same_corpus(run_dir: Path, trained: str, given: str) -> None:
    """Refuse new text for a run that has finished: training would have nothing to do, and say so as if the text
    had been read. The same files (or copies of them, or the files moved, as its token cache recorded them) are
    the same text."""
    if given == trained:
        return
    files = find_files(given)
    with contextlib.suppress(TextgenError, OSError):
        before = find_files(trained)
        if len(before) == len(files) and all(a.resolve() == b.resolve() or filecmp.cmp(a, b, shallow=False)
                                             for a, b in zip(before, files)):
            return
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        recorded = json.loads((run_dir / TOKENS / MANIFEST).read_text(encoding="utf-8"))["corpus"]
        if [entry[1:] for entry in recorded] == [[p.stat().st_size, p.stat().st_mtime_ns] for p in files]:
            return
    tuned = Path(run_dir).parent / f"{Path(run_dir).name}-{run_name(given)}"
    raise CheckpointError(f"{run_dir} has finished training on {trained}, and {given} is other text: train does not "
                          "add text to a finished run; fine-tune it on the new text in a new run with: "
                          f"{command('lstm-textgen', 'train', given, '--from', run_dir, '--run', tuned)}, or leave "
                          "the corpus out to keep the run as it is")


def restore_best_model(run_dir: Path, state: TrainingState) -> None:
    """A resumed run whose model.keras was deleted gets its best epoch's checkpoint back as model.keras."""
    best = epoch_checkpoint(run_dir, state.best_epoch)
    if state.best_epoch and not (run_dir / MODEL).is_file() and best.is_file():
        with replacing(run_dir / MODEL, suffix=".keras") as tmp:
            shutil.copyfile(best, tmp)
        log.info(f"{run_dir / MODEL} was missing: copied back from {best}")


def finished(config: Config, state: TrainingState) -> bool:
    patience = config.train.early_stopping_patience
    stopped = state.stopped_early and patience is not None and state.wait >= patience
    return state.step == 0 and (state.epoch >= config.train.epochs or stopped or out_of_time(config, state))


def out_of_time(config: Config, state: TrainingState) -> bool:
    """train.max_minutes counts the time of every session of the run: a resumed run gets what is left."""
    minutes = config.train.max_minutes
    return minutes is not None and state.spent_seconds >= minutes * 60.0


def current_learning_rate(state: TrainingState, configured: float) -> float:
    """The rate to resume with: the plateau schedule's, unless train.learning_rate was changed since."""
    if state.learning_rate is not None and state.started_learning_rate == configured:
        return state.learning_rate
    state.learning_rate, state.started_learning_rate, state.lr_wait = None, configured, 0
    return configured


def carried_states(model) -> list:
    """The recurrent state variables of stateful layers (a stateful run's streams), in layer order."""
    return [v for layer in model.layers if getattr(layer, "stateful", False) and layer.states is not None
            for v in layer.states]


def restore_state(models, run_dir: Path, state: TrainingState, learning_rate: float) -> None:
    """Load the weights, optimizer moments, dropout seeds and carried streams of a saved state into freshly
    built models (model.Models).

    If the saved state's weights are missing or damaged, training goes back to the newest epoch
    checkpoint that loads (its weights and optimizer state), and the state is rewound to that epoch.
    """
    model = models.training
    if not state.weights and not state.epoch:
        return
    model.optimizer.build(model.trainable_variables)
    path = run_dir / CHECKPOINTS / state.weights if state.weights else None
    if path is not None and _loads(models, path):
        for variable, value in zip(seed_states(model), state.seeds):
            variable.assign(value)
        for variable, value in zip(carried_states(model), state.carried):
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
    for epoch in range(state.epoch, 0, -1):
        checkpoint = epoch_checkpoint(run_dir, epoch)
        if checkpoint.is_file() and _loads(models, checkpoint):
            log.warning(f"warning: {damaged or 'the saved state'} is missing or corrupt; resuming from "
                        f"{checkpoint} (the end of epoch {epoch})")
            state.rewind(epoch)
            return
    if state.epoch:  # check_restorable saw a checkpoint that looked whole; it does not load
        raise CheckpointError(f"cannot continue {run_dir}: {damaged or 'the saved state'} is missing or corrupt and "
                              f"no epoch checkpoint loads; its {MODEL} still generates: keep it and train a new run "
                              "with another --run, or pass --restart to delete it and start over")
    log.warning(f"warning: {damaged or 'the saved state'} is missing or corrupt and no epoch had finished; "
                "training starts again from epoch 1")
    state.rewind(0)


def seed_states(model) -> list:
    """The dropout seed-generator variables, in layer order (their names carry a process-wide counter)."""
    return [v for v in model.variables if "seed_generator_state" in v.path]
