"""Callbacks that let a person watch training: epoch samples (samples.txt), curves.png and TensorBoard logs.

train.py runs them after RunWriter, so history.csv and the epoch's checkpoint are already on disk.
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from lstm_textgen.atomic import write_text
from lstm_textgen.training.callbacks import perplexity
from lstm_textgen.config import TrainConfig
from lstm_textgen.errors import ConfigError
from lstm_textgen.model.weights import ModelWeights, read_model_weights
from lstm_textgen.run.files import CURVES, SAMPLES, TENSORBOARD, TOKENIZER, epoch_checkpoint, token_file
from lstm_textgen.text import load_tokenizer
from lstm_textgen.text.tokenizer import UNK_ID, Tokenizer
from lstm_textgen.config.values import shown

SAMPLE_TEMPERATURES = (0.5, 1.0)  # the likeliest text, and the model's own distribution


def monitoring_callbacks(train: TrainConfig, run_dir: Path, models, state) -> list:
    """Extra Keras callbacks for a training run, after the run directory's own (callbacks.py) have run; state is
    the TrainingState, where the TensorBoard logs are recorded."""
    callbacks: list = []
    if train.sample_every:
        tokenizer = load_tokenizer(run_dir / TOKENIZER)
        callbacks.append(SampleWriter(run_dir, train, tokenizer, sample_seed(train, run_dir, tokenizer), models))
    callbacks.append(CurvesWriter(run_dir))
    if train.tensorboard:
        if importlib.util.find_spec("tensorboard") is None:  # tf.summary needs it to write anything
            raise ConfigError("train.tensorboard is true but the tensorboard package is not installed; "
                              "run: pip install tensorboard (or pip install 'lstm-textgen[tensorboard]')")
        callbacks.append(RecordedTensorBoard(run_dir, state))
    return callbacks


class RecordedTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard logs under <run_dir>/tensorboard, each event file it starts recorded in the training state
    (saved with it), so that --restart removes exactly those and never a person's file beside them."""

    def __init__(self, run_dir: Path, state):
        self.run_dir, self.state = run_dir, state
        self.before = self._files()  # what was there before this session's writers started theirs
        super().__init__(log_dir=str(run_dir / TENSORBOARD))

    def on_train_begin(self, logs=None):  # the training writer starts with the model's graph, or here
        super().on_train_begin(logs)
        self._train_writer.flush()
        self._record()

    def on_test_begin(self, logs=None):  # the validation writer starts at the first validation
        super().on_test_begin(logs)
        self._val_writer.flush()
        self._record()

    def _files(self) -> set[str]:
        folder = self.run_dir / TENSORBOARD
        if not folder.is_dir():
            return set()
        return {p.relative_to(self.run_dir).as_posix() for p in folder.rglob("events.out.tfevents.*") if p.is_file()}

    def _record(self) -> None:
        self.state.logs.logs += sorted(self._files() - self.before - set(self.state.logs.logs))


def sample_seed(train: TrainConfig, run_dir: Path, tokenizer: Tokenizer) -> str:
    """train.sample_seed, or the first words of the training text (skipping <unk>) when it is null."""
    seed = train.sample_seed
    if seed is not None:
        if all(i == UNK_ID for i in tokenizer.encode(seed)):
            raise ConfigError(f"train.sample_seed {shown(seed)} has no word in the vocabulary; use words from the "
                              "training text, or null for its first words")
        return seed
    ids = np.load(token_file(run_dir, "train"), mmap_mode="r")[:10_000]
    ids = ids[ids > UNK_ID][:tokenizer.seed_tokens]
    return tokenizer.decode(ids) if len(ids) else tokenizer.vocab[2]  # no known token: the commonest one


class SampleWriter(keras.callbacks.Callback):
    """Every train.sample_every epochs: a short sample at two temperatures, printed and added to samples.txt."""

    def __init__(self, run_dir: Path, train: TrainConfig, tokenizer: Tokenizer, seed: str, models):
        super().__init__()
        self.run_dir, self.train, self.tokenizer, self.seed, self.models = run_dir, train, tokenizer, seed, models

    def on_epoch_end(self, epoch, logs=None):
        train = self.train
        if (epoch + 1) % train.sample_every:
            return
        from lstm_textgen.config import GenerateConfig
        from lstm_textgen.generation.sample import Generator

        generator = Generator(self.tokenizer, self._weights(epoch + 1))  # this epoch's, not model.keras (the best)
        # Fixed draws per temperature: from one epoch to the next, only the model changes.
        texts = [generator.sample([self.seed], GenerateConfig(length=train.sample_length, temperature=t),
                                  [train.seed + i])[0].text for i, t in enumerate(SAMPLE_TEMPERATURES)]
        entry = format_samples(epoch + 1, (logs or {}).get("val_loss"), self.seed, texts)
        tqdm.write(entry, file=sys.stderr)  # above the progress bars, which tqdm redraws
        path = self.run_dir / SAMPLES
        before = path.read_text(encoding="utf-8") if path.exists() else ""
        write_text(path, before + entry + "\n\n")

    def _weights(self, epoch: int) -> ModelWeights:
        """This epoch's weights: its checkpoint if kept, else the live model saved to a scratch file."""
        checkpoint = epoch_checkpoint(self.run_dir, epoch)
        if checkpoint.is_file():
            return read_model_weights(checkpoint)
        with tempfile.TemporaryDirectory() as folder:  # train.keep_checkpoints=0 pruned it
            scratch = Path(folder) / "model.keras"
            self.models.export().save(scratch)  # the plain stack, for a stateful or tied training model
            return read_model_weights(scratch)


def format_samples(epoch: int, val_loss: float | None, seed: str, texts: list[str]) -> str:
    """One samples.txt entry: a header naming the epoch and seed, then one indented block per temperature."""
    quality = "" if val_loss is None else f" (val perplexity {perplexity(val_loss):,.2f})"
    lines = [f"epoch {epoch}{quality}, seed {_quoted(seed)}"]
    for temperature, text in zip(SAMPLE_TEMPERATURES, texts):
        first, *rest = text.lstrip(" ").split("\n")
        lines.append(f"  temperature {temperature}: ...{first}")
        lines.extend(f"      {line}" if line.strip() else "" for line in rest)  # the continuation, indented
    return "\n".join(lines)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class CurvesWriter(keras.callbacks.Callback):
    """Redraws curves.png from history.csv after every epoch, so a long run can be watched."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        from lstm_textgen.run.curves import plot_runs

        plot_runs([self.run_dir], self.run_dir / CURVES)
