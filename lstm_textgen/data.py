"""Token ids -> tf.data windows cut on the fly from one int32 array (no window matrix, sparse targets)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lstm_textgen.atomic import replacing, write_text
from lstm_textgen.config import DataConfig
from lstm_textgen.corpus import find_files, split_point
from lstm_textgen.errors import CorpusError, TextgenError
from lstm_textgen.tokenizer import Tokenizer


TOKENS = "tokens"  # run-directory folder of the token cache: train.npy, val.npy, manifest.json


def corpus_fingerprint(spec: str) -> list[list]:
    """[path, size, mtime_ns] of every corpus file: a cache is reused only while these stay the same."""
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in find_files(spec)]


def load_token_cache(run_dir: Path, config: DataConfig):
    """(tokenizer, train_ids, val_ids) memory-mapped from a run's cache, or None if it is stale or absent."""
    folder = run_dir / TOKENS
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest != {"corpus": corpus_fingerprint(config.corpus), "data": _cache_key(config)}:
            return None
        tokenizer = Tokenizer.load(run_dir / "tokenizer.json")
        return tokenizer, np.load(folder / "train.npy", mmap_mode="r"), np.load(folder / "val.npy", mmap_mode="r")
    except (OSError, ValueError, TextgenError):
        return None


def save_token_cache(run_dir: Path, config: DataConfig, train_ids: np.ndarray, val_ids: np.ndarray) -> None:
    folder = run_dir / TOKENS
    for name, ids in (("train.npy", train_ids), ("val.npy", val_ids)):
        with replacing(folder / name, suffix=".npy") as tmp:
            np.save(tmp, ids)
    write_text(folder / "manifest.json", json.dumps({"corpus": corpus_fingerprint(config.corpus),
                                                     "data": _cache_key(config)}))


def _cache_key(config: DataConfig) -> dict:
    return {k: getattr(config, k) for k in ("level", "lowercase", "max_vocab", "min_count", "val_fraction")}


def encode_splits(texts: list[tuple[Path, str]], tokenizer: Tokenizer,
                  val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Encode every file once; its last val_fraction of tokens goes to validation, the rest to training."""
    train_parts, val_parts = [], []
    total = sum(len(text) for _, text in texts)
    with tqdm(total=total, desc="tokenizing", unit="char", unit_scale=True, leave=False) as bar:
        for _, text in texts:
            ids = tokenizer.encode_array(text)
            cut = split_point(len(ids), val_fraction)
            train_parts.append(ids[:cut])
            val_parts.append(ids[cut:])
            bar.update(len(text))
    return np.concatenate(train_parts), np.concatenate(val_parts)


def stride_for(config: DataConfig, objective: str) -> int:
    """Windows for `last` overlap by default (one target each); `sequence` windows tile the text."""
    if config.stride is not None:
        return config.stride
    return 1 if objective == "last" else config.window_size


def count_windows(n_tokens: int, window_size: int, stride: int) -> int:
    """Windows of window_size inputs plus the next token that fit in n_tokens."""
    span = n_tokens - window_size  # starts 0 .. n_tokens - window_size - 1
    return 0 if span <= 0 else (span - 1) // stride + 1


def check_long_enough(train_ids: np.ndarray, val_ids: np.ndarray, config: DataConfig) -> None:
    need = config.window_size + 1
    if len(train_ids) < need:
        raise CorpusError(f"the corpus has {len(train_ids) + len(val_ids)} tokens, too short for one training "
                          f"window of {need} (data.window_size={config.window_size} plus its target); "
                          "use more text or a smaller --set data.window_size")
    if len(val_ids) < need:
        raise CorpusError(f"the validation tail has {len(val_ids)} tokens, fewer than one window of {need}; "
                          "raise --set data.val_fraction, lower data.window_size or use more text")


def make_dataset(ids: np.ndarray, window_size: int, batch_size: int, objective: str, stride: int,
                 shuffle: bool = False, seed: int = 0, start: int = 0):
    """A tf.data.Dataset of (inputs, targets) batches.

    inputs are (batch, window_size) int32 ids; targets are (batch,) for `last` and (batch, window_size)
    for `sequence`. With shuffle, the window order is a fresh stateless permutation per pass over the
    data, seeded by (seed, pass): it repeats forever, and `start` (windows already used, e.g. the
    global step times the batch size) resumes the very same stream at any point.
    """
    import tensorflow as tf

    n = count_windows(len(ids), window_size, stride)
    tokens = tf.constant(ids, dtype=tf.int32)
    offsets = tf.range(window_size + 1, dtype=tf.int64)

    def cut(starts):  # (batch,) window numbers -> (batch, window_size + 1) ids
        windows = tf.gather(tokens, starts[:, None] * stride + offsets)
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
