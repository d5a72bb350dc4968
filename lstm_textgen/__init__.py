"""lstm-textgen: train an LSTM next-word model on your own text and generate from a seed phrase.

Public API: load_config, train, load_run, generate, generate_many, TextgenError. Everything but the errors is imported
on first use, so `import lstm_textgen` (and `lstm-textgen --help`) stays fast.
"""
__version__ = "0.1.0"

from lstm_textgen.errors import TextgenError  # noqa: E402

_LAZY = {
    "load_config": "lstm_textgen.config",
    "train": "lstm_textgen.training.train",  # not train.py: a submodule would shadow the function
    "load_run": "lstm_textgen.run.rundir",
    "generate": "lstm_textgen.generation.sample",
    "generate_many": "lstm_textgen.generation.sample",
}
__all__ = ["TextgenError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lstm_textgen' has no attribute {name!r}")
