"""How the training process hands freed memory back to the system instead of keeping its peak resident.

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

M_MMAP_THRESHOLD = -3  # glibc mallopt() parameter, from <malloc.h>
MMAP_THRESHOLD = 128 << 10  # allocations this big get pages of their own, returned when freed


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
