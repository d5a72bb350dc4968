"""Token ids -> tf.data windows and stateful streams, cut on the fly from one int32 array (no window matrix,
sparse targets)."""
from __future__ import annotations

import logging

import numpy as np

from lstm_textgen.config import DataConfig, TrainConfig
from lstm_textgen.errors import CorpusError

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
