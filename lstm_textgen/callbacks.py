"""Keras callbacks that keep the run directory current and resumable while training."""
from __future__ import annotations

import csv
import io
import logging
import math
import shutil
import time
import zipfile
from pathlib import Path

import keras

from lstm_textgen.atomic import replacing, write_text
from lstm_textgen.checkpoints import (CHECKPOINTS, HISTORY, METRICS, MODEL, TrainingState, save_json,
                                      save_model)
from lstm_textgen.stream import exported_model, load_weights

log = logging.getLogger("lstm_textgen")
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_perplexity", "seconds",
                   "tokens_per_second", "windows_per_second", "learning_rate"]


def perplexity(loss: float | None) -> float:
    return math.inf if loss is None else math.exp(min(loss, 700.0))  # exp overflows a float past ~709


class Interrupted(Exception):
    """Raised out of fit() after a resumable state was saved, when a stop was asked for."""


class RunWriter(keras.callbacks.Callback):
    """Writes history.csv, checkpoints/, model.keras (best val_loss), metrics.json and the training state.

    Keras' ModelCheckpoint, CSVLogger, EarlyStopping and BackupAndRestore each do part of this, but they
    write files in place (a kill mid-write leaves half a file), restart an interrupted epoch from its
    first batch, and forget early-stopping and dropout-seed state across runs. This one writes every
    file under a temporary name and renames it, and keeps all of it in one state: a resumed run
    continues at the very step where the last one stopped.
    """

    def __init__(self, run_dir: Path, state: TrainingState, targets_per_step: int, windows_per_step: int,
                 patience: int | None, keep_checkpoints: int, backup_every_steps: int | None, summary: dict,
                 max_minutes: float | None = None, plateau: "Plateau | None" = None):
        super().__init__()
        self.max_seconds = None if max_minutes is None else max_minutes * 60.0
        self.plateau = plateau
        self.run_dir, self.state = run_dir, state
        self.windows_per_step = windows_per_step  # the global batch: tokens_per_step / window for `sequence`
        self.targets_per_step, self.patience, self.keep = targets_per_step, patience, keep_checkpoints
        self.backup_every_steps, self.summary = backup_every_steps, summary
        self.stop_requested = False  # set by a signal handler; honoured at the next batch end

    # --- progress within an epoch -------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self.session_start, self.spent_before = time.perf_counter(), self.state.spent_seconds

    def _spent(self) -> float:
        return self.spent_before + time.perf_counter() - self.session_start

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.val_start = time.perf_counter()
        self.fit_steps = 0  # steps of this epoch run by this fit() call (a resumed epoch had some before)
        self.before = dict(self.state.partial)  # sums over the steps of this epoch run before this fit()
        self.last_logs: dict = {}
        self.out_of_time = False

    def on_train_batch_end(self, batch, logs=None):
        self.fit_steps += 1
        self.state.step += 1
        self.state.global_step += 1
        self.state.tokens_seen += self.targets_per_step
        self.last_logs = dict(logs or {})
        if logs is not None:  # Keras hands the same dict to the callbacks after this one: the progress bar shows it
            seconds = time.perf_counter() - self.epoch_start
            logs["tokens/s"] = round(self.fit_steps * self.targets_per_step / max(seconds, 1e-9))
        if self.stop_requested:
            self._save_state(self._partial())
            raise Interrupted
        if self.max_seconds is not None and self._spent() >= self.max_seconds:
            self.model.stop_training = True  # Keras still runs this epoch's validation and on_epoch_end
            self.out_of_time = True
        if self.backup_every_steps and self.state.global_step % self.backup_every_steps == 0:
            self._save_state(self._partial())

    def on_test_begin(self, logs=None):
        self.val_start = time.perf_counter()  # training time ends where validation starts

    def _partial(self) -> dict:
        """Sums over the epoch so far: what was saved before this fit() plus its running means."""
        before = self.before
        seconds = (self.val_start if self.val_start > self.epoch_start else time.perf_counter()) - self.epoch_start
        return {name: before.get(name, 0.0) + float(self.last_logs.get(name, 0.0)) * self.fit_steps
                for name in ("loss", "accuracy")} | {"seconds": before.get("seconds", 0.0) + seconds}

    # --- the end of an epoch ------------------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        state = self.state
        totals = self._partial()
        steps = state.step
        val_loss = logs.get("val_loss")
        val_loss = None if val_loss is None or math.isnan(val_loss) else float(val_loss)
        row = {"epoch": epoch + 1, "loss": totals["loss"] / steps, "accuracy": totals["accuracy"] / steps,
               "val_loss": val_loss, "val_accuracy": logs.get("val_accuracy"),
               "val_perplexity": perplexity(val_loss), "seconds": round(time.perf_counter() - self.epoch_start, 3),
               **self._rates(steps, totals["seconds"]),
               "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))}
        state.rows.append(row)
        state.train_seconds += totals["seconds"]
        state.epoch, state.step, state.partial = epoch + 1, 0, {}
        state.epoch_ends.append([state.global_step, state.tokens_seen, state.train_seconds])

        checkpoint = self.run_dir / CHECKPOINTS / f"epoch_{epoch + 1:03d}.keras"
        save_model(exported_model(self.model), checkpoint)  # the plain stack
        improved = val_loss is not None and (state.best_loss is None or val_loss < state.best_loss)
        if improved:
            state.best_loss, state.best_epoch, state.wait = val_loss, epoch + 1, 0
            with replacing(self.run_dir / MODEL, suffix=".keras") as tmp:
                shutil.copyfile(checkpoint, tmp)
        else:
            state.wait += 1
        if self.patience and state.wait >= self.patience:
            state.stopped_early = True
            self.model.stop_training = True
        if self.plateau is not None:
            self.plateau.update(self.model.optimizer, state, val_loss)
        state.spent_seconds = self._spent()
        if self.out_of_time:
            log.info(f"train.max_minutes={self.max_seconds / 60:g} is spent: stopped after {steps} steps of epoch "
                     f"{epoch + 1}, validated and saved")
        self._prune()
        self._write_history()
        self._write_metrics()
        self._save_state({})
        if self.stop_requested:
            raise Interrupted

    def _save_state(self, partial: dict) -> None:
        """Weights and optimizer under a new name, then state.json pointing at them (the commit)."""
        state, folder = self.state, self.run_dir / CHECKPOINTS
        state.partial = partial
        name = f"state_{state.global_step:09d}.weights.h5"
        if state.weights != name:
            with replacing(folder / name, suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp)
        state.weights = name
        state.seeds = [v.numpy().tolist() for v in _seed_states(self.model)]
        state.carried = [v.numpy().tolist() for v in carried_states(self.model)]
        if partial:  # at an epoch end, on_epoch_end has set it
            state.spent_seconds = self._spent()
        state.save(self.run_dir)
        for old in folder.glob("state_*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def _prune(self):
        files = sorted((self.run_dir / CHECKPOINTS).glob("epoch_*.keras"))
        best = self.run_dir / CHECKPOINTS / f"epoch_{self.state.best_epoch:03d}.keras"
        for old in files[: max(len(files) - self.keep, 0)]:
            if old != best:
                old.unlink(missing_ok=True)

    def _write_history(self):
        out = io.StringIO()
        writer = csv.DictWriter(out, HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.state.rows)
        write_text(self.run_dir / HISTORY, out.getvalue())

    def _write_metrics(self):
        state = self.state
        save_json(self.run_dir / METRICS, {
            **self.summary,
            "epochs": state.epoch,
            "best_epoch": state.best_epoch,
            "best_val_loss": state.best_loss,
            "best_val_perplexity": perplexity(state.best_loss),
            "stopped_early": state.stopped_early,
            "tokens_seen": state.tokens_seen,
            **self._rates(state.tokens_seen // self.targets_per_step, state.train_seconds),
        })

    def _rates(self, steps: int, seconds: float) -> dict:
        seconds = max(seconds, 1e-9)
        return {"tokens_per_second": round(steps * self.targets_per_step / seconds, 1),
                "windows_per_second": round(steps * self.windows_per_step / seconds, 1)}


class Plateau:
    """keras.callbacks.ReduceLROnPlateau's rule on val_loss, with its wait counter and rate kept in the
    training state, so a resumed run continues the schedule where it stood."""

    def __init__(self, patience: int, factor: float, min_learning_rate: float, min_delta: float = 0.0):
        self.patience, self.factor, self.min_learning_rate = patience, factor, min_learning_rate
        self.min_delta = min_delta

    def update(self, optimizer, state: TrainingState, val_loss: float | None) -> None:
        """Keras' rule: better means below the best so far by more than min_delta (and only that moves the best)."""
        improved = val_loss is not None and (state.lr_best is None or val_loss < state.lr_best - self.min_delta)
        if improved:
            state.lr_best = val_loss
        state.lr_wait = 0 if improved else state.lr_wait + 1
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        if state.lr_wait >= self.patience and rate > self.min_learning_rate:
            new_rate = max(rate * self.factor, self.min_learning_rate)
            optimizer.learning_rate = new_rate
            log.info(f"val_loss has not improved for {state.lr_wait} epochs: learning rate {rate:.3g} -> {new_rate:.3g}")
            state.lr_wait = 0
            rate = new_rate
        state.learning_rate = rate


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


def restore_state(model, run_dir: Path, state: TrainingState, learning_rate: float) -> None:
    """Load weights, optimizer moments and dropout seeds saved by RunWriter into a freshly built model.

    If the saved state's weights are missing or damaged, training goes back to the newest epoch
    checkpoint that loads (its weights and optimizer state), and the state is rewound to that epoch.
    """
    if not state.weights and not state.epoch:
        return
    model.optimizer.build(model.trainable_variables)
    path = run_dir / CHECKPOINTS / state.weights if state.weights else None
    if path is not None and _loads(model, path):
        for variable, value in zip(_seed_states(model), state.seeds):
            variable.assign(value)
        for variable, value in zip(carried_states(model), state.carried):
            variable.assign(value)
    else:
        _fall_back(model, run_dir, state, path)
    model.optimizer.learning_rate = learning_rate  # a changed learning rate is a safe change


def _loads(model, path: Path) -> bool:
    try:
        load_weights(model, path)  # an epoch checkpoint of a stateful or tied run holds the plain stack
        return True
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return False


def _fall_back(model, run_dir: Path, state: TrainingState, damaged: Path | None) -> None:
    """Rewind to the newest epoch checkpoint that loads; with none, to the start."""
    folder = run_dir / CHECKPOINTS
    for epoch in range(state.epoch, 0, -1):
        checkpoint = folder / f"epoch_{epoch:03d}.keras"
        if checkpoint.is_file() and _loads(model, checkpoint):
            log.warning(f"warning: {damaged or 'the saved state'} is missing or corrupt; resuming from "
                        f"{checkpoint} (the end of epoch {epoch})")
            state.rewind(epoch)
            return
    log.warning(f"warning: {damaged or 'the saved state'} is missing or corrupt and no epoch checkpoint "
                "loads; training starts again from epoch 1")
    state.rewind(0)


def _seed_states(model) -> list:
    """The dropout seed-generator variables, in layer order (their names carry a process-wide counter)."""
    return [v for v in model.variables if "seed_generator_state" in v.path]
