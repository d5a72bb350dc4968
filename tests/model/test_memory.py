"""Memory: the estimate of what a config needs, refused before any allocation when the machine has less; and
release_freed_memory(), a fixed glibc mmap threshold unless the user chose one."""
import subprocess
import sys

import pytest

from lstm_textgen.model import memory
from lstm_textgen.config import load_config
from lstm_textgen.errors import ConfigError

from conftest import REPO


def test_parameters_match_the_model_keras_builds():
    from lstm_textgen.model.stack import build_model

    for path, overrides in ((REPO / "configs" / "reference.yaml", []), (None, ["model.rnn=gru", "model.layers=2"]),
                            (None, ["model.bidirectional=true", "model.objective=last", "model.units=7"]),
                            (REPO / "configs" / "quality.yaml", ["model.dropout=0.4", "model.weight_drop=0.5",
                                                                  "model.dense_dropout=0.4"])):
        config = load_config(path, overrides)
        model = build_model(config.model, 321, config.embedding.dim)
        tied = config.model.tie_weights * 321 * config.model.dense_units  # the tied kernel is the embedding's
        assert memory.parameters(config.model, config.embedding.dim, 321) == model.count_params() - tied


def test_a_config_beyond_the_machine_is_refused_naming_what_to_lower(monkeypatch):
    config = load_config(None, ["model.units=4096", "train.batch_size=512", "data.window_size=200"])
    shape = (config.model, config.embedding.dim, config.data.window_size, config.train.batch_size, 50_000)
    need = memory.training_bytes(*shape)
    assert need > 50_000 * 4096 * 4  # the weights alone
    monkeypatch.setattr(memory, "available_bytes", lambda: need + 1)
    memory.check_fits(*shape)
    monkeypatch.setattr(memory, "available_bytes", lambda: need - 1)
    with pytest.raises(ConfigError, match=r"needs about [\d.]+ GB of memory .* more than the [\d.]+ GB free; lower "
                                          r"model.units"):
        memory.check_fits(*shape)


def test_the_machine_reports_the_memory_it_has():
    have = memory.available_bytes()
    assert have is None or 10 << 20 < have < 1 << 50


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


MMAPPED = """
import ctypes, sys
from lstm_textgen.model.memory import release_freed_memory
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "fixed":
    release_freed_memory()
libc.free(libc.malloc(4 << 20))  # glibc's own rule: freeing a mapped 4 MiB block raises its threshold past it
block = libc.malloc(512 << 10)
size = ctypes.c_size_t.from_address(block - ctypes.sizeof(ctypes.c_size_t)).value
print(bool(size & 2))  # the chunk header's IS_MMAPPED bit
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_with_the_fixed_threshold_a_big_block_is_still_mapped_on_its_own_after_a_bigger_one_was_freed():
    """What the setting is for: without it glibc serves the second block from the heap, where its pages stay
    resident after it is freed; with it the block has a mapping of its own, returned to the system when freed."""
    def mapped(mode):
        result = subprocess.run([sys.executable, "-c", MMAPPED, mode], capture_output=True, text=True, timeout=60,
                                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
        assert result.returncode == 0, result.stderr
        return result.stdout.strip() == "True"
    assert mapped("fixed") and not mapped("dynamic")
