"""Token ids -> tf.data windows and stateful streams, cut on the fly from one int32 array (no window matrix,
sparse targets); and what a config's `auto` settings come to for a run's training tokens and budget.

`auto` is worked out once, when a run starts, and written into its config.yaml: a resumed run keeps it (kept()),
since a changed budget would otherwise change the batch or the model halfway.
- train.batch_size: the rows that make an epoch about AUTO_STEPS steps, fewer where the budget would then make
  under MIN_STEPS steps in all (a short run needs updates more than rows).
- model.dropout, weight_drop, dense_dropout: by how hard the run can overfit, its pressure: the passes over the
  training text its budget buys times the model's weights per training token. A large text read a few times
  is still being learnt and wants little; a small one read many times would be learnt by heart and wants much.
Steps and passes come from a cost model of one CPU training step, calibrated on the project's 2-core machine;
with no train.max_minutes, the epochs are the passes. docs/guides/recipes.md gives the rules and their runs.
"""
from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from lstm_textgen.config import Config, DataConfig, TrainConfig
from lstm_textgen.errors import CorpusError
from lstm_textgen.model.memory import parameters

log = logging.getLogger("lstm_textgen")

AUTO_STEPS = 400  # train.batch_size=auto: the rows that cut an epoch into about this many steps,
AUTO_ROWS = (10, 40)  # kept in this range (docs/quality-history.md)


def stride_for(config: DataConfig, objective: str) -> int:
    """Windows for `last` overlap by default (one target each); `sequence` windows tile the text."""
    if config.stride is not None:
        return config.stride
    return 1 if objective == "last" else config.window_size


def count_windows(n_tokens: int, window_size: int, stride: int) -> int:
    """Windows of window_size inputs plus the next token that fit in n_tokens."""
    span = n_tokens - window_size  # starts 0 .. n_tokens - window_size - 1
    return 0 if span <= 0 else (span - 1) // stride + 1


def batch_size_for(train: TrainConfig, data: DataConfig, objective: str, n_train_tokens: int) -> int:
    """train.batch_size, with `auto` worked out from the training tokens: the rows a step that make an epoch
    about AUTO_STEPS steps, at least AUTO_ROWS[0] and at most AUTO_ROWS[1]. A small corpus gets small batches
    (more updates before it is learnt by heart), a large one larger (fewer steps, each step's fixed cost
    shared by more rows)."""
    if train.batch_size != "auto":
        return train.batch_size
    windows = count_windows(n_train_tokens, data.window_size, stride_for(data, objective))
    low, high = AUTO_ROWS
    return min(max(round(windows / AUTO_STEPS), low), high)


def check_long_enough(train_ids: np.ndarray, val_ids: np.ndarray, config: DataConfig) -> None:
    need = config.window_size + 1
    if len(train_ids) < need:
        raise CorpusError(f"the corpus has {len(train_ids) + len(val_ids)} tokens, too short for one training "
                          f"window of {need} (data.window_size={config.window_size} plus its target); "
                          "use more text or a smaller --set data.window_size")
    if len(val_ids) < need:
        raise CorpusError(f"the {validation(config)} has {len(val_ids)} tokens, fewer than one window of {need}; "
                          f"{more_validation(config)}, lower data.window_size or use more text")


def validation(config: DataConfig) -> str:
    """What the validation tokens are, for an error line."""
    return "validation tail" if config.val_corpus is None else f"validation corpus {config.val_corpus}"


def more_validation(config: DataConfig) -> str:
    return "raise --set data.val_fraction" if config.val_corpus is None else "give a longer data.val_corpus"


def make_dataset(ids: np.ndarray, window_size: int, batch_size: int, objective: str, stride: int,
                 shuffle: bool = False, seed: int = 0, start: int = 0):
    """A tf.data.Dataset of (inputs, targets) batches, cut from ids (a numpy array or memmap, never copied).

    inputs are (batch, window_size) int32 ids; targets are (batch,) for `last` and (batch, window_size)
    for `sequence`. With shuffle, the window order is a fresh stateless permutation per pass over the
    data, seeded by (seed, pass): it repeats forever, and `start` (windows already used, e.g. the
    global step times the batch size) resumes the very same stream at any point.
    """
    import tensorflow as tf

    ids = np.asarray(ids, np.int32)  # a view when ids is an int32 array or memmap already
    n = count_windows(len(ids), window_size, stride)
    offsets = np.arange(window_size + 1, dtype=np.int64)

    def gather(starts):  # (batch,) window numbers -> (batch, window_size + 1) ids, read from ids where they lie
        return np.asarray(ids[starts[:, None] * stride + offsets], np.int32)

    def cut(starts):
        # numpy, not tf.gather: a TensorFlow copy of the ids would double their memory (a memmap's pages too)
        windows = tf.numpy_function(gather, [starts], tf.int32, stateful=False)
        windows.set_shape(starts.shape.concatenate(window_size + 1))
        if objective == "last":
            return windows[:, :-1], windows[:, -1]
        return windows[:, :-1], windows[:, 1:]

    if shuffle:
        first_pass, offset = divmod(start, n)

        def permutation(pass_number):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), pass_number]))
            skip = tf.where(pass_number == first_pass, tf.constant(offset, tf.int64), 0)
            return tf.data.Dataset.from_tensor_slices(order[skip:])
        starts = tf.data.Dataset.range(first_pass, 2**62).flat_map(permutation)
        batches = starts.batch(batch_size, drop_remainder=True)
    else:
        batches = tf.data.Dataset.range(n).batch(batch_size)
    return batches.map(cut, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def stream_windows(n_tokens: int, window_size: int, batch_size: int) -> int:
    """Consecutive windows (plus the next token) in each of batch_size equal streams of n_tokens."""
    return max((n_tokens // batch_size - 1) // window_size, 0)


def check_streams_long_enough(train_ids, val_ids, config: DataConfig, batch_size: int) -> None:
    """train.stateful cuts each split into batch_size streams: each must hold one window and its targets."""
    for name, ids, more in (("training text", train_ids, "use more text"),
                            (validation(config), val_ids, f"{more_validation(config)} or use more text")):
        if stream_windows(len(ids), config.window_size, batch_size) == 0:
            raise CorpusError(f"the {name} has {len(ids)} tokens: cut into train.batch_size={batch_size} streams, "
                              f"each is shorter than one window of {config.window_size + 1}; lower --set "
                              f"train.batch_size or data.window_size, or {more}")


def make_stream_dataset(ids, window_size: int, batch_size: int, start: int | None = None):
    """Batches for stateful training (truncated BPTT), as the PyTorch word language model cuts them.

    The ids are cut into batch_size equal streams, one per batch row; batch k holds window k of every
    stream, so row r of one batch continues row r of the batch before. inputs and targets are
    (batch, window_size), read from ids where they lie (a memmap is never copied). With start (the
    global step), the batches cycle forever from window start mod the windows per stream; without, the
    dataset is one pass.
    """
    import tensorflow as tf

    ids = np.asarray(ids, np.int32)
    n = stream_windows(len(ids), window_size, batch_size)
    length = len(ids) // batch_size
    streams = ids[: length * batch_size].reshape(batch_size, length)  # a view

    def block(k):  # window number -> (batch, window_size + 1) ids
        at = int(k % n) * window_size
        return np.ascontiguousarray(streams[:, at: at + window_size + 1])

    def cut(k):
        windows = tf.numpy_function(block, [k], tf.int32, stateful=False)
        windows.set_shape((batch_size, window_size + 1))  # static: the unrolled step unrolls the window
        return windows[:, :-1], windows[:, 1:]

    steps = tf.data.Dataset.range(n) if start is None else tf.data.Dataset.range(start, 2**62)
    return steps.map(cut, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


KEYS = ("dropout", "weight_drop", "dense_dropout")  # the model: settings that may be `auto`
MIN_STEPS = 3_000  # train.batch_size=auto: fewer rows where the budget would make fewer steps (5 minutes of War and
# Peace: 21 rows, not 40; 20 rows scored 85.1 where 40 scored 89.3, docs/quality-history.md)
SECONDS_PER_WEIGHT = 9.0e-9  # a step's fixed cost, per weight (gradients and Adam's update of each)
SECONDS_PER_MAC = 2.4e-11  # a trained token's cost, per multiply-add of its forward pass (backward included)
# Calibrated 2026-12-06 on the 2-core machine (AMD EPYC, bfloat16 products), a tied 2 x 256 LSTM, vocabulary 10,000:
# 5,400 tokens/s at 10 rows a step, 8,800 at 40 (docs/quality-history.md, "Regularisation that follows the budget").

# The rule: each value is its low one up to LOW pressure, its high one from HIGH on, and in between linear in
# log2(pressure). The low values are configs/char.yaml's, tuned for 30 minutes of War and Peace's characters
# (pressure about 8: 20 passes by the cost model, of 1.1 M weights over 2.9 M characters), and won for 5 minutes
# of its words (about 23: 4 passes of 3.7 M weights over 657,000 words); the high ones are configs/quality.yaml's,
# tuned for 30 minutes of its words (about 137: 24 passes) and no worse than more or less on Beyond Good and Evil.
LOW, HIGH = 24.0, 128.0
RULE = {  # key: (low, high)
    "dropout": (0.1, 0.4),
    "weight_drop": (0.2, 0.5),
    "dense_dropout": (0.1, 0.4),
}


def is_auto(config: Config) -> bool:
    return config.train.batch_size == "auto" or any(getattr(config.model, key) == "auto" for key in KEYS)


def forward_macs(config: Config, vocab_size: int) -> int:
    """Multiply-adds of one token's forward pass: every weight once, but of the embedding only its row, and a tied
    output layer's matrix once more (it is the embedding, read as the softmax)."""
    model, dim = config.model, config.embedding.dim
    macs = parameters(model, dim, vocab_size) - vocab_size * dim
    return macs + (vocab_size * model.dense_units if model.tie_weights else 0)


def step_seconds(config: Config, vocab_size: int, rows: int) -> float:
    """One training step's seconds by the cost model."""
    return (SECONDS_PER_WEIGHT * parameters(config.model, config.embedding.dim, vocab_size)
            + SECONDS_PER_MAC * rows * config.data.window_size * forward_macs(config, vocab_size))


def steps(config: Config, n_train_tokens: int, vocab_size: int, rows: int) -> tuple[int, float]:
    """(steps an epoch, steps the run will make): train.epochs of them, or fewer where train.max_minutes ends it
    first by the cost model."""
    data, train = config.data, config.train
    windows = count_windows(n_train_tokens, data.window_size, stride_for(data, config.model.objective))
    epoch = train.steps_per_epoch or max(1, math.ceil(windows / rows))
    total = float(train.epochs * epoch)
    if train.max_minutes is not None:
        total = min(total, train.max_minutes * 60 / step_seconds(config, vocab_size, rows))
    return epoch, total


def passes(config: Config, n_train_tokens: int, vocab_size: int, rows: int) -> float:
    """The passes over the training windows this run will make."""
    epoch, total = steps(config, n_train_tokens, vocab_size, rows)
    return total / epoch


def rows_for(config: Config, n_train_tokens: int, vocab_size: int) -> int:
    """train.batch_size=auto for a new run: data.batch_size_for's rows, fewer (down to its lowest) while the run
    would make fewer than MIN_STEPS steps."""
    rows = batch_size_for(config.train, config.data, config.model.objective, n_train_tokens)
    if config.train.batch_size != "auto":
        return rows
    while rows > AUTO_ROWS[0] and steps(config, n_train_tokens, vocab_size, rows)[1] < MIN_STEPS:
        rows -= 1
    return rows


def pressure(config: Config, n_train_tokens: int, vocab_size: int, rows: int) -> float:
    """How hard the run can overfit: passes times weights per training token."""
    weights = parameters(config.model, config.embedding.dim, vocab_size)
    return passes(config, n_train_tokens, vocab_size, rows) * weights / max(n_train_tokens, 1)


def rule(key: str, press: float) -> float:
    """The value of model.KEY for a run of this pressure, to two decimals."""
    low, high = RULE[key]
    share = math.log2(max(press, LOW) / LOW) / math.log2(HIGH / LOW)
    return round(low + (high - low) * min(share, 1.0), 2)


def with_auto(config: Config, n_train_tokens: int, vocab_size: int, keras_step: str | None = None) -> Config:
    """A new run's config with each `auto` worked out, said in the log; weight_drop is 0 where Keras' own step
    trains (keras_step says why), which has no DropConnect. A resumed run keeps its values instead (kept())."""
    if not is_auto(config):
        return config
    plain = batch_size_for(config.train, config.data, config.model.objective, n_train_tokens)
    rows = rows_for(config, n_train_tokens, vocab_size)
    if config.train.batch_size == "auto":
        fewer = (f" (not {plain}: the budget makes about {steps(config, n_train_tokens, vocab_size, rows)[1]:,.0f} "
                 f"steps, at least {MIN_STEPS:,} wanted)") if rows < plain else ""
        log.info(f"train.batch_size=auto: {rows} rows a step, for {n_train_tokens:,} training tokens{fewer}")
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size=rows))
    values = {key: getattr(config.model, key) for key in KEYS if getattr(config.model, key) == "auto"}
    if not values:
        return config
    press = pressure(config, n_train_tokens, vocab_size, rows)
    values = {key: rule(key, press) for key in values}
    if keras_step is not None and "weight_drop" in values:
        values["weight_drop"] = 0.0
        log.info(f"model.weight_drop=auto: 0, as Keras' own step trains ({keras_step})")
    weights = parameters(config.model, config.embedding.dim, vocab_size)
    log.info(f"model {', '.join(f'{k}={v}' for k, v in values.items())} (auto): about "
             f"{passes(config, n_train_tokens, vocab_size, rows):,.1f} passes over {n_train_tokens:,} training "
             f"tokens of {weights / n_train_tokens:,.2f} weights each: pressure {press:,.0f}")
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **values))


def kept(config: Config, saved: Config) -> Config:
    """A resumed run's config: each `auto` takes the value the run started with (its saved config's; a batch
    saved as `auto`, as runs before the budget rule wrote it, stays `auto` for train._with_batch_size's rule)."""
    values = {key: getattr(saved.model, key) for key in KEYS if getattr(config.model, key) == "auto"}
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, **values)) if values else config
    if config.train.batch_size == "auto":
        config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       batch_size=saved.train.batch_size))
    return config
