"""release_freed_memory(): TensorFlow takes tensors from the system allocator unless the user chose otherwise."""
import os

from lstm_textgen.memory import release_freed_memory


def test_tensorflow_uses_the_system_allocator_unless_the_user_set_it(monkeypatch):
    monkeypatch.delenv("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", raising=False)
    release_freed_memory()
    assert os.environ["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] == "1"
    monkeypatch.setenv("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "0")
    release_freed_memory()
    assert os.environ["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] == "0"
