"""Keras callbacks that keep the run directory current after every epoch."""
from __future__ import annotations

import csv
import io
import math
import shutil
import time
from pathlib import Path

import keras

from lstm_textgen.atomic import replacing, write_text
from lstm_textgen.checkpoints import CHECKPOINTS, HISTORY, METRICS, MODEL, save_json, save_model

HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_perplexity", "seconds",
                   "tokens_per_second"]


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 700.0))  # exp overflows a float past ~709


class RunWriter(keras.callbacks.Callback):
    """Writes history.csv, checkpoints/epoch_NNN.keras, model.keras (best val_loss) and metrics.json.

    Keras' ModelCheckpoint and CSVLogger write in place; a run killed mid-write would be left with a
    half-written file, so this one writes each file under a temporary name and renames it.
    """

    def __init__(self, run_dir: Path, targets_per_step: int, keep_checkpoints: int, summary: dict):
        super().__init__()
        self.run_dir, self.targets_per_step, self.keep = run_dir, targets_per_step, keep_checkpoints
        self.summary = summary  # static facts for metrics.json (vocab size, corpus tokens, ...)
        self.rows: list[dict] = []
        self.best_loss, self.best_epoch = math.inf, 0
        self.tokens_seen = 0  # training targets, summed over epochs
        self.train_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.val_start = time.perf_counter()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_test_begin(self, logs=None):
        self.val_start = time.perf_counter()  # training time ends where validation starts

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        now = time.perf_counter()
        ran_validation = self.val_start > self.epoch_start
        train_seconds = max((self.val_start if ran_validation else now) - self.epoch_start, 1e-9)
        self.tokens_seen += self.steps * self.targets_per_step
        self.train_seconds.append(train_seconds)
        val_loss = float(logs.get("val_loss", math.nan))
        row = {"epoch": epoch + 1, "loss": logs.get("loss"), "accuracy": logs.get("accuracy"),
               "val_loss": val_loss, "val_accuracy": logs.get("val_accuracy"),
               "val_perplexity": perplexity(val_loss), "seconds": round(now - self.epoch_start, 3),
               "tokens_per_second": round(self.steps * self.targets_per_step / train_seconds, 1)}
        self.rows.append(row)
        self._write_history()
        checkpoint = self.run_dir / CHECKPOINTS / f"epoch_{epoch + 1:03d}.keras"
        save_model(self.model, checkpoint)
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch = val_loss, epoch + 1
            with replacing(self.run_dir / MODEL, suffix=".keras") as tmp:
                shutil.copyfile(checkpoint, tmp)
        self._prune()
        self._write_metrics()

    def _write_history(self):
        out = io.StringIO()
        writer = csv.DictWriter(out, HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.run_dir / HISTORY, out.getvalue())

    def _prune(self):
        files = sorted((self.run_dir / CHECKPOINTS).glob("epoch_*.keras"))
        best = self.run_dir / CHECKPOINTS / f"epoch_{self.best_epoch:03d}.keras"
        for old in files[: max(len(files) - self.keep, 0)]:
            if old != best:
                old.unlink(missing_ok=True)

    def _write_metrics(self):
        train_seconds = sum(self.train_seconds)
        save_json(self.run_dir / METRICS, {
            **self.summary,
            "epochs": len(self.rows),
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_loss,
            "best_val_perplexity": perplexity(self.best_loss),
            "tokens_seen": self.tokens_seen,
            "tokens_per_second": round(self.tokens_seen / max(train_seconds, 1e-9), 1),
        })
