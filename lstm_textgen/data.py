"""Token ids -> tf.data windows cut on the fly from one int32 array (no window matrix, sparse targets)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lstm_textgen.atomic import replacing, write_text
from lstm_textgen.config import DataConfig
from lstm_textgen.corpus import CHUNK_BYTES, find_files, no_text_error, read_chunks, split_point
from lstm_textgen.errors import CorpusError, TextgenError
from lstm_textgen.tokenizer import UNK_ID, Tokenizer


TOKENS = "tokens"  # run-directory folder of the token cache: train.npy, val.npy, manifest.json
# Token numbers per block while tokenizing: 32 MiB, which glibc's malloc always maps on its own, so a
# freed block goes back to the system at once instead of staying in the heap.
BLOCK = 8 << 20
SLICE = 1 << 20  # token numbers counted or looked up at a time (numpy makes an int64 copy of them)


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


def save_token_cache(run_dir: Path, config: DataConfig, train_ids: np.ndarray,
                     val_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Write the run's token cache (unless the ids are mapped from it already) and return it memory-mapped.

    Training reads the mapped arrays, so the caller's in-memory ids can be freed: one copy, not two.
    """
    folder = run_dir / TOKENS
    names = ("train.npy", "val.npy")
    if not all(_mapped_from(ids, folder / name) for name, ids in zip(names, (train_ids, val_ids))):
        for name, ids in zip(names, (train_ids, val_ids)):
            with replacing(folder / name, suffix=".npy") as tmp:
                np.save(tmp, ids)
        write_text(folder / "manifest.json", json.dumps({"corpus": corpus_fingerprint(config.corpus),
                                                         "data": _cache_key(config)}))
    return tuple(np.load(folder / name, mmap_mode="r") for name in names)


def _mapped_from(ids: np.ndarray, path: Path) -> bool:
    filename = getattr(ids, "filename", None)  # np.memmap's absolute path
    return filename is not None and Path(filename) == path.resolve()


def _cache_key(config: DataConfig) -> dict:
    return {k: getattr(config, k) for k in ("level", "lowercase", "max_vocab", "min_count", "val_fraction")}


def tokenize_corpus(config: DataConfig, chunk_bytes: int = CHUNK_BYTES,
                    block: int = BLOCK) -> tuple[Tokenizer, np.ndarray, np.ndarray]:
    """Fit the tokenizer and encode the corpus, streaming: the same result as Tokenizer.fit and encode on
    whole files, but holding one chunk of text at a time (plus the counts and the int32 ids).

    One pass over the text numbers each token by its first appearance, into blocks of `block` int32;
    the counts of those numbers give the vocabulary, and a lookup table turns them into token ids,
    block by block, each block freed once placed: the ids are in memory once, plus one block.
    """
    files = find_files(config.corpus)
    probe = Tokenizer(config.level, config.lowercase, [])
    first_seen: dict[str, int] = {}  # token -> its number, in order of first appearance (ties keep it)
    blocks: list[np.ndarray | None] = []  # the token numbers of all files, one after the other
    ends = []  # per file: how many numbers there are up to its end
    n, has_text = 0, False
    with tqdm(total=sum(p.stat().st_size for p in files), desc="tokenizing", unit="B", unit_scale=True,
              leave=False) as bar:
        for path in files:
            for text, size in read_chunks(path, chunk_bytes):
                has_text = has_text or bool(text.strip())
                part = np.fromiter((first_seen.setdefault(t, len(first_seen)) for t in probe.split(text)),
                                   dtype=np.int32)
                n = _append(blocks, block, n, part)
                bar.update(size)
            ends.append(n)
    if not has_text:
        raise no_text_error(config.corpus, files)

    counts = np.zeros(len(first_seen), np.int64)
    at = 0
    while at < n:  # bincount makes an int64 copy: a slice at a time keeps it small
        i, j = divmod(at, block)
        numbers = blocks[i][j: j + min(SLICE, block - j, n - at)]
        counts += np.bincount(numbers, minlength=len(counts))
        at += len(numbers)
    tokens = list(first_seen)
    del first_seen
    tokenizer = Tokenizer.from_counts(Counter(dict(zip(tokens, counts.tolist()))), config.level,
                                      config.lowercase, config.max_vocab, config.min_count)
    lookup = np.array([tokenizer.index.get(t, UNK_ID) for t in tokens], np.int32)  # number -> token id
    del tokens, counts

    starts = [0, *ends[:-1]]
    cuts = [split_point(end - start, config.val_fraction) for start, end in zip(starts, ends)]
    train, val = np.empty(sum(cuts), np.int32), np.empty(n - sum(cuts), np.int32)
    at_train = at_val = 0
    for start, end, cut in zip(starts, ends, cuts):  # a file's head goes to train, its tail to val
        _place(blocks, block, lookup, start, start + cut, train[at_train: at_train + cut])
        _place(blocks, block, lookup, start + cut, end, val[at_val: at_val + end - start - cut])
        at_train, at_val = at_train + cut, at_val + end - start - cut
    return tokenizer, train, val


def _append(blocks: list, block: int, n: int, part: np.ndarray) -> int:
    """Put part after the first n numbers in blocks, adding blocks as they fill; returns the new count."""
    done = 0
    while done < len(part):
        if n == len(blocks) * block:
            blocks.append(np.empty(block, np.int32))  # pages not yet written take no memory
        at = n % block
        take = min(block - at, len(part) - done)
        blocks[-1][at: at + take] = part[done: done + take]
        n, done = n + take, done + take
    return n


def _place(blocks: list, block: int, lookup: np.ndarray, start: int, end: int, out: np.ndarray) -> None:
    """out = the ids of numbers start..end-1; frees each block once its last number is placed."""
    while start < end:  # np.take makes an int64 copy of the numbers: a slice at a time keeps it small
        i, at = divmod(start, block)
        take = min(block - at, end - start, SLICE)
        np.take(lookup, blocks[i][at: at + take], out=out[:take], mode="clip")  # clip: no buffered copy
        out, start = out[take:], start + take
        if at + take == block:
            blocks[i] = None


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
    for name, ids in (("training text", train_ids), ("validation tail", val_ids)):
        if stream_windows(len(ids), config.window_size, batch_size) == 0:
            raise CorpusError(f"the {name} has {len(ids)} tokens: cut into train.batch_size={batch_size} streams, "
                              f"each is shorter than one window of {config.window_size + 1}; lower --set "
                              "train.batch_size or data.window_size, or use more text")


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
