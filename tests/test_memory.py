"""release_freed_memory(): a fixed glibc mmap threshold, unless the user chose one."""
import sys

import pytest

from lstm_textgen import memory


class FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_big_blocks_get_mappings_of_their_own_unless_the_user_set_the_threshold(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: libc)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert memory.release_freed_memory() is True
    assert libc.calls == [(memory.M_MMAP_THRESHOLD, 128 * 1024)]
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert memory.release_freed_memory() is False
    assert len(libc.calls) == 1  # the user's choice stands


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_the_real_mallopt_accepts_the_setting(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert memory.release_freed_memory() is True
