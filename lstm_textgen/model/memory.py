"""Memory: what training a config will take (checked before anything is allocated), and how the training
process hands freed memory back to the system instead of keeping its peak resident.

Each training step allocates and frees large (batch, window_size, vocab) tensors. Once glibc's malloc has
freed a big mapped block it raises its mmap threshold (up to 32 MiB) and serves later big blocks from
heaps that fragment, so the peak of one step stays resident and creeps up from step to step. A fixed
threshold keeps big blocks in mappings of their own, returned to the system when freed.

TensorFlow's oneDNN allocator (TF_ONEDNN_USE_SYSTEM_ALLOCATOR) is left alone: handing oneDNN's tensors to
malloc too saves about 70 MB more on the 100 MB benchmark but made training steps about 20% slower.
"""
from __future__ import annotations

import ctypes
import os
import sys

from lstm_textgen.config import ModelConfig
from lstm_textgen.errors import ConfigError

M_MMAP_THRESHOLD = -3  # glibc mallopt() parameter, from <malloc.h>
MMAP_THRESHOLD = 128 << 10  # allocations this big get pages of their own, returned when freed
TENSORFLOW_BYTES = 700 << 20  # TensorFlow's own resident memory before any work (the corpus benchmark: about 0.69 GB)


def release_freed_memory() -> bool:
    """Best effort, before TensorFlow starts: big blocks mapped on their own. True if the setting was made.

    A threshold the user set in the environment (MALLOC_MMAP_THRESHOLD_) is left as it is.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))  # fixed: it no longer rises
    except (OSError, AttributeError):  # a C library without mallopt
        return False


def parameters(model: ModelConfig, embedding_dim: int, vocab_size: int) -> int:
    """Weights of the stack build_model() makes (embedding, recurrent layers, Dense, softmax)."""
    gates, count, features = {"lstm": 4, "gru": 3}[model.rnn], vocab_size * embedding_dim, embedding_dim
    directions = 2 if model.bidirectional else 1
    for _ in range(model.layers):
        # GRU (reset_after) has a second bias
        count += directions * gates * model.units * (features + model.units + (2 if model.rnn == "gru" else 1))
        features = directions * model.units
    count += model.dense_units * (features + 1) + vocab_size
    return count + (0 if model.tie_weights else vocab_size * model.dense_units)


def training_bytes(model: ModelConfig, embedding_dim: int, window_size: int, batch_size: int, vocab_size: int) -> int:
    """A generous estimate of what training this model takes, in bytes: the weights with their gradients,
    Adam's two moments and the saved copies, and one step's activations (the softmax over the whole
    vocabulary at every target is the big one), plus TensorFlow itself."""
    weights = 4 * parameters(model, embedding_dim, vocab_size)
    targets = batch_size * (window_size if model.objective == "sequence" else 1)
    softmax = 3 * 4 * targets * vocab_size  # logits, probabilities and their gradient
    recurrent = 4 * batch_size * window_size * model.layers * (10 * model.units + embedding_dim)
    return 6 * weights + softmax + 2 * recurrent + TENSORFLOW_BYTES


def available_bytes() -> int | None:
    """Memory this machine can give a new allocation now (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(model: ModelConfig, embedding_dim: int, window_size: int, batch_size: int, vocab_size: int) -> None:
    """Refuse, before anything is allocated, a model whose training cannot fit in this machine's memory."""
    need, have = training_bytes(model, embedding_dim, window_size, batch_size, vocab_size), available_bytes()
    if have is not None and need > have:
        raise ConfigError(
            f"training this model needs about {need / 1e9:,.1f} GB of memory "
            f"({parameters(model, embedding_dim, vocab_size):,} weights, vocabulary {vocab_size:,}, {batch_size:,} "
            f"windows of {window_size:,} a step), more than the {have / 1e9:,.1f} GB free; lower model.units, "
            "embedding.dim, data.max_vocab, train.batch_size or data.window_size")
