"""Small Keras callbacks that keep the run directory current and resumable while training.

They share one Session (the TrainingState plus this fit()'s clocks) and run in the order train.py lists
them: at an epoch end the StepCounter adds the epoch's row, BestModel saves the checkpoints, EarlyStop and
the learning-rate schedule (schedules.py) decide what comes next, TimeBudget counts the time, HistoryWriter
writes the files people read, validation.Averaged puts the trained weights back (train.ema_momentum validates
and saves their moving average) and Backup commits the state last. Each owns its part of the state
(run/state.py) and saves and restores it through the Session.

Keras' ModelCheckpoint, CSVLogger, EarlyStopping and BackupAndRestore each do part of this, but they write
files in place (a kill mid-write leaves half a file), restart an interrupted epoch from its first batch, and
forget early-stopping and dropout-seed state across runs. These write every file under a temporary name and
rename it, and keep all of it in one state: a resumed run continues at the very step where the last stopped.
"""
from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import keras

from lstm_textgen.atomic import replacing, write_text
from lstm_textgen.errors import TrainingError
from lstm_textgen.training.resume import Stopped, seed_states
from lstm_textgen.run.state import TrainingState
from lstm_textgen.text.tokens import bits_per_char
from lstm_textgen.run.files import (CHECKPOINTS, HISTORY, METRICS, MODEL, epoch_checkpoint, epoch_checkpoints,
                                    is_state_weights, save_json, save_model, state_weights_name)

log = logging.getLogger("lstm_textgen")
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_perplexity", "seconds",
                   "tokens_per_second", "windows_per_second", "learning_rate"]


def perplexity(loss: float | None) -> float:
    return math.inf if loss is None else math.exp(min(loss, 700.0))  # exp overflows a float past ~709


class Session:
    """What the callbacks of one training session share: the state, and the clocks and sums of this fit()."""

    def __init__(self, run_dir: Path, state: TrainingState, targets_per_step: int, windows_per_step: int):
        self.run_dir, self.state = run_dir, state
        self.targets_per_step = targets_per_step
        self.windows_per_step = windows_per_step  # the global batch: tokens_per_step / window for `sequence`
        self.stop_requested = False  # set by a signal handler; honoured at the next batch end
        self.started, self.spent_before = time.perf_counter(), state.budget.spent_seconds
        self.epoch_start = self.val_start = self.started
        self.fit_steps = 0  # steps of this epoch run by this fit() call (a resumed epoch had some before)
        self.before: dict = {}  # sums over the steps of this epoch run before this fit()
        self.last_logs: dict = {}
        self.savers: list = []  # each owner's saver(mid_epoch): brings its part of the state up to date for Backup

    def spent(self) -> float:
        """Training seconds over every session of the run (train.max_minutes)."""
        return self.spent_before + time.perf_counter() - self.started

    def partial(self) -> dict:
        """Sums over the epoch so far: what was saved before this fit() plus its running means."""
        before, end = self.before, self.val_start if self.val_start > self.epoch_start else time.perf_counter()
        return {name: before.get(name, 0.0) + float(self.last_logs.get(name, 0.0)) * self.fit_steps
                for name in ("loss", "accuracy")} | {"seconds": before.get("seconds", 0.0) + end - self.epoch_start}

    def rates(self, steps: int, seconds: float) -> dict:
        seconds = max(seconds, 1e-9)
        return {"tokens_per_second": round(steps * self.targets_per_step / seconds, 1),
                "windows_per_second": round(steps * self.windows_per_step / seconds, 1)}


class StepCounter(keras.callbacks.Callback):
    """Counts steps and tokens, shows tokens/s to the progress bar, and adds each epoch's history row."""

    def __init__(self, session: Session):
        super().__init__()
        self.session = session

    def on_train_begin(self, logs=None):
        self.session.started, self.session.spent_before = time.perf_counter(), self.session.state.budget.spent_seconds

    def on_epoch_begin(self, epoch, logs=None):
        session = self.session
        session.epoch_start = session.val_start = time.perf_counter()
        session.fit_steps, session.before, session.last_logs = 0, dict(session.state.progress.partial), {}

    def on_train_batch_end(self, batch, logs=None):
        session, state = self.session, self.session.state
        session.fit_steps += 1
        state.progress.step, state.progress.global_step = state.progress.step + 1, state.progress.global_step + 1
        state.progress.tokens_seen += session.targets_per_step
        session.last_logs = dict(logs or {})
        loss = session.last_logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingError(f"training diverged: the loss is {float(loss)} at epoch {state.progress.epoch + 1}, "
                                f"step {state.progress.step}; run the same command with a lower --set "
                                "train.learning_rate (it resumes from the last saved state) or set train.clipnorm")
        if logs is not None:  # Keras hands the same dict to the callbacks after this one: the progress bar shows it
            seconds = time.perf_counter() - session.epoch_start
            logs["tokens/s"] = round(session.fit_steps * session.targets_per_step / max(seconds, 1e-9))

    def on_test_begin(self, logs=None):
        self.session.val_start = time.perf_counter()  # training time ends where validation starts

    def on_epoch_end(self, epoch, logs=None):
        logs, session, state = logs or {}, self.session, self.session.state
        totals, steps = session.partial(), state.progress.step
        val_loss = logs.get("val_loss")
        val_loss = None if val_loss is None or math.isnan(val_loss) else float(val_loss)
        state.progress.rows.append({
            "epoch": epoch + 1, "loss": totals["loss"] / steps, "accuracy": totals["accuracy"] / steps,
            "val_loss": val_loss, "val_accuracy": logs.get("val_accuracy"), "val_perplexity": perplexity(val_loss),
            "seconds": round(time.perf_counter() - session.epoch_start, 3), **session.rates(steps, totals["seconds"]),
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))})
        progress = state.progress
        progress.train_seconds += totals["seconds"]
        progress.epoch, progress.step, progress.partial = epoch + 1, 0, {}
        progress.epoch_ends.append([progress.global_step, progress.tokens_seen, progress.train_seconds])


class BestModel(keras.callbacks.Callback):
    """Saves each epoch's checkpoint (the plain stack), copies the best one to model.keras, prunes the rest."""

    def __init__(self, session: Session, models, keep: int):
        super().__init__()
        self.session, self.models, self.keep = session, models, keep

    def on_epoch_end(self, epoch, logs=None):
        run_dir, state = self.session.run_dir, self.session.state
        checkpoint = epoch_checkpoint(run_dir, epoch + 1)
        save_model(self.models.export(), checkpoint)
        val_loss = state.progress.rows[-1]["val_loss"]
        if val_loss is not None and (state.best.best_loss is None or val_loss < state.best.best_loss):
            state.best.best_loss, state.best.best_epoch = val_loss, epoch + 1
            with replacing(run_dir / MODEL, suffix=".keras") as tmp:
                shutil.copyfile(checkpoint, tmp)
        files, best = epoch_checkpoints(run_dir), epoch_checkpoint(run_dir, state.best.best_epoch)
        for old in files[: max(len(files) - self.keep, 0)]:
            if old != best:
                old.unlink(missing_ok=True)


class EarlyStop(keras.callbacks.Callback):
    """Stops after train.early_stopping_patience epochs without a better val_loss (the best model is kept)."""

    def __init__(self, session: Session, patience: int | None):
        super().__init__()
        self.session, self.patience = session, patience

    def on_epoch_end(self, epoch, logs=None):
        state = self.session.state
        state.patience.wait = state.progress.epoch - state.best.best_epoch  # epochs since val_loss last improved
        if self.patience and state.patience.wait >= self.patience:
            state.patience.stopped_early = True
            self.model.stop_training = True


class TimeBudget(keras.callbacks.Callback):
    """train.max_minutes over every session of the run: stops after the batch that spends it; Keras then still
    validates the (partial) epoch and runs every epoch-end callback."""

    def __init__(self, session: Session, max_minutes: float | None):
        super().__init__()
        self.session = session
        self.max_seconds = None if max_minutes is None else max_minutes * 60.0
        self.stopped_at: int | None = None  # the step of the epoch at which the budget ran out
        session.savers.append(self.save)

    def save(self, mid_epoch: bool) -> None:
        if mid_epoch:  # at an epoch end on_epoch_end has set it
            self.session.state.budget.spent_seconds = self.session.spent()

    def on_train_batch_end(self, batch, logs=None):
        if self.max_seconds is not None and self.session.spent() >= self.max_seconds:
            self.model.stop_training = True
            self.stopped_at = self.session.state.progress.step

    def on_epoch_end(self, epoch, logs=None):
        self.session.state.budget.spent_seconds = self.session.spent()
        if self.stopped_at is not None:
            log.info(f"train.max_minutes={self.max_seconds / 60:g} is spent: stopped after {self.stopped_at} steps of "
                     f"epoch {epoch + 1}, validated and saved")
            self.stopped_at = None


class HistoryWriter(keras.callbacks.Callback):
    """history.csv (one row per epoch) and metrics.json (the run's figures so far), after every epoch."""

    def __init__(self, session: Session, summary: dict):
        super().__init__()
        self.session, self.summary = session, summary

    def on_epoch_end(self, epoch, logs=None):
        session, state = self.session, self.session.state
        out = io.StringIO()
        writer = csv.DictWriter(out, HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(state.progress.rows)
        write_text(session.run_dir / HISTORY, out.getvalue())
        progress, best = state.progress, state.best
        save_json(session.run_dir / METRICS, {
            **self.summary, "epochs": progress.epoch, "best_epoch": best.best_epoch, "best_val_loss": best.best_loss,
            "best_val_perplexity": perplexity(best.best_loss), "stopped_early": state.patience.stopped_early,
            "best_val_bits_per_char": bits_per_char(best.best_loss, *map(self.summary.get, ("val_tokens", "val_chars"))),
            "tokens_seen": progress.tokens_seen,
            **session.rates(progress.tokens_seen // session.targets_per_step, progress.train_seconds)})


class Backup(keras.callbacks.Callback):
    """Commits a resumable state every train.backup_every_steps steps and at each epoch end, and stops there
    when a stop was asked for (Ctrl-C, SIGTERM): the weights and optimizer under a new name, then state.json
    pointing at them."""

    def __init__(self, session: Session, every_steps: int | None):
        super().__init__()
        self.session, self.every_steps = session, every_steps

    def on_train_batch_end(self, batch, logs=None):
        session = self.session
        if session.stop_requested:
            self.save(session.partial())
            raise Stopped(session.run_dir, session.state)
        if self.every_steps and session.state.progress.global_step % self.every_steps == 0:
            self.save(session.partial())

    def on_epoch_end(self, epoch, logs=None):
        self.save({})
        if self.session.stop_requested:
            raise Stopped(self.session.run_dir, self.session.state)

    def save(self, partial: dict) -> None:
        state, folder = self.session.state, self.session.run_dir / CHECKPOINTS
        state.progress.partial = partial
        name = state_weights_name(state.progress.global_step)
        if state.saved.weights != name:
            with replacing(folder / name, suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp)
        state.saved.weights = name
        state.saved.seeds = [v.numpy().tolist() for v in seed_states(self.model)]
        for saver in self.session.savers:  # every other owner's part (the budget, the carried streams)
            saver(bool(partial))
        state.save(self.session.run_dir)
        for old in folder.iterdir():  # the last state's weights, and any a killed save left unnamed by state.json
            if is_state_weights(old.name) and old.name != name:
                old.unlink(missing_ok=True)


class EpochLine(keras.callbacks.Callback):
    """One plain line per epoch, for output that is not a terminal (a log file, a pipe): no bars redrawn there."""

    def __init__(self, session: Session, epochs: int):
        super().__init__()
        self.session, self.epochs = session, epochs

    def on_epoch_end(self, epoch, logs=None):
        row = self.session.state.progress.rows[-1]
        val = "-" if row["val_loss"] is None else f"{row['val_loss']:.4f}"
        ppl = row["val_perplexity"]
        log.info(f"epoch {row['epoch']}/{self.epochs}: loss {row['loss']:.4f}, accuracy {row['accuracy']:.4f}, "
                 f"val_loss {val}, val perplexity {f'{ppl:,.2f}' if ppl < 1e7 else f'{ppl:.3g}'}, "
                 f"{row['tokens_per_second']:,.0f} tokens/s, {row['seconds']:,.1f} s")


@contextlib.contextmanager
def stop_on_signals(session: Session):
    """First Ctrl-C or SIGTERM: finish the batch, save a resumable state, stop. A second Ctrl-C: stop now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        if session.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        session.stop_requested = True
        log.info("\nstopping after this batch to save a resumable state (Ctrl-C again to stop at once)")

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def progress_bar(session: Session, epochs: int):
    """tqdm's bars (epochs and steps, with loss and tokens/s) on a terminal; elsewhere a plain line per epoch."""
    from tqdm.keras import TqdmCallback

    if not sys.stderr.isatty():
        return EpochLine(session, epochs)
    return TqdmCallback(verbose=1, leave=False, bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}<{remaining}{postfix}]")
