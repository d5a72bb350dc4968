"""Streaming tokenization of a whole corpus, and the run's memory-mapped token cache (tokens/)."""
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

SPLITS = ("train.npy", "val.npy")  # the cache folder's token arrays, beside its manifest.json
# Token numbers per block while tokenizing: 32 MiB, which glibc's malloc always maps on its own, so a
# freed block goes back to the system at once instead of staying in the heap.
BLOCK = 8 << 20
SLICE = 1 << 20  # token numbers counted or looked up at a time (numpy makes an int64 copy of them)


def corpus_fingerprint(spec: str) -> list[list]:
    """[path, size, mtime_ns] of every corpus file: a cache is reused only while these stay the same."""
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in find_files(spec)]


def load_token_cache(folder: Path, tokenizer_path: Path, config: DataConfig):
    """(tokenizer, train_ids, val_ids) memory-mapped from a token cache folder, or None if it is stale or absent."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest != {"corpus": corpus_fingerprint(config.corpus), "data": _cache_key(config)}:
            return None
        tokenizer = Tokenizer.load(tokenizer_path)
        return tokenizer, *(np.load(folder / name, mmap_mode="r") for name in SPLITS)
    except (OSError, ValueError, EOFError, TextgenError):  # np.load of an empty file is an EOFError
        return None


def save_token_cache(folder: Path, config: DataConfig, train_ids: np.ndarray,
                     val_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Write the token cache (unless the ids are mapped from it already) and return it memory-mapped.

    Training reads the mapped arrays, so the caller's in-memory ids can be freed: one copy, not two.
    """
    if not all(_mapped_from(ids, folder / name) for name, ids in zip(SPLITS, (train_ids, val_ids))):
        for name, ids in zip(SPLITS, (train_ids, val_ids)):
            with replacing(folder / name, suffix=".npy") as tmp:
                np.save(tmp, ids)
        write_text(folder / "manifest.json", json.dumps({"corpus": corpus_fingerprint(config.corpus),
                                                         "data": _cache_key(config)}))
    return tuple(np.load(folder / name, mmap_mode="r") for name in SPLITS)


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
              leave=False, disable=None) as bar:  # disable=None: a bar on a terminal only
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
    if tokenizer.vocab_size <= 2:  # only <pad> and <unk>: every token of the corpus would be unknown
        raise CorpusError(f"data.min_count={config.min_count} keeps no token of the corpus (its commonest appears "
                          f"{int(counts.max())} times); lower --set data.min_count")
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
