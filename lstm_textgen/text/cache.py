"""The run's token cache (tokens/): the tokenized corpus memory-mapped, reused while the corpus files and the data
settings are what it was made from."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lstm_textgen.atomic import replacing, write_text
from lstm_textgen.config import DataConfig
from lstm_textgen.errors import TextgenError
from lstm_textgen.text import load_tokenizer
from lstm_textgen.text.corpus import find_files
from lstm_textgen.text.tokens import Tokens

SPLITS = ("train.npy", "val.npy")  # the cache folder's token arrays, beside its manifest
MANIFEST = "manifest.json"  # what the cache was made from
CACHE_FILES = (*SPLITS, MANIFEST)


def corpus_fingerprint(spec: str) -> list[list]:
    """[path, size, mtime_ns] of every corpus file: a cache is reused only while these stay the same."""
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in find_files(spec)]


def load_token_cache(folder: Path, tokenizer_path: Path, config: DataConfig) -> Tokens | None:
    """The Tokens memory-mapped from a token cache folder, or None if it is stale or absent."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        val_chars = manifest.pop("val_chars", None)  # caches written before it are stale: tokenized again
        if manifest != _manifest(config) or not isinstance(val_chars, int) or val_chars < 0:
            return None
        tokenizer = load_tokenizer(tokenizer_path)
        return Tokens(tokenizer, *(np.load(folder / name, mmap_mode="r") for name in SPLITS), val_chars)
    except (OSError, ValueError, EOFError, TextgenError):  # np.load of an empty file is an EOFError
        return None


def save_token_cache(folder: Path, config: DataConfig, train_ids: np.ndarray, val_ids: np.ndarray,
                     val_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """Write the token cache (unless the ids are mapped from it already) and return it memory-mapped.

    Training reads the mapped arrays, so the caller's in-memory ids can be freed: one copy, not two.
    """
    if not all(_mapped_from(ids, folder / name) for name, ids in zip(SPLITS, (train_ids, val_ids))):
        for name, ids in zip(SPLITS, (train_ids, val_ids)):
            with replacing(folder / name, suffix=".npy") as tmp:
                np.save(tmp, ids)
        write_text(folder / MANIFEST, json.dumps({**_manifest(config), "val_chars": val_chars}))
    return tuple(np.load(folder / name, mmap_mode="r") for name in SPLITS)


def _mapped_from(ids: np.ndarray, path: Path) -> bool:
    filename = getattr(ids, "filename", None)  # np.memmap's absolute path
    return filename is not None and Path(filename) == path.resolve()


def _manifest(config: DataConfig) -> dict:
    """What a token cache was made from: the corpus files as they were, and the data settings."""
    keys = ("level", "lowercase", "max_vocab", "min_count", "val_fraction")
    return {"corpus": corpus_fingerprint(config.corpus), "data": {k: getattr(config, k) for k in keys},
            **({"val_corpus": corpus_fingerprint(config.val_corpus)} if config.val_corpus is not None else {})}
