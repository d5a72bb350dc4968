"""How the training process hands freed memory back to the system instead of keeping its peak resident.

Each training step allocates and frees a few hundred MB of (batch, window_size, vocab) tensors. TensorFlow's
oneDNN allocator keeps freed blocks in a pool of its own; glibc's malloc, once a big block is freed, raises
its mmap threshold (up to 32 MiB) and serves later blocks from heaps that fragment. Either way the peak of
one step stays resident and creeps up from step to step.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc mallopt() parameter, from <malloc.h>
MMAP_THRESHOLD = 128 << 10  # allocations this big get pages of their own, returned when freed


def release_freed_memory() -> None:
    """Best effort, before TensorFlow starts: tensors from the system allocator, big blocks mapped on their own.

    A process that has made TensorFlow's CPU allocator already keeps it. A value the user set for either
    setting in the environment (TF_ONEDNN_USE_SYSTEM_ALLOCATOR, MALLOC_MMAP_THRESHOLD_) is left as it is.
    """
    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # a fixed threshold no longer rises
    except (OSError, AttributeError):  # a C library without mallopt
        pass
