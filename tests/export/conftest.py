"""Runs and exports the export tests share (each written once per session; copy one before changing it)."""
from __future__ import annotations

import pytest

from conftest import TINY_TEXT, train_tiny


@pytest.fixture(scope="session")
def gru_run(tmp_path_factory):
    """A tiny run of two GRU layers with the `last` objective (tiny_run is one LSTM layer, `sequence`)."""
    folder = tmp_path_factory.mktemp("gru_run")
    corpus = folder / "corpus.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    return train_tiny(corpus, folder / "run", "model.rnn=gru", "model.layers=2", "model.objective=last")


@pytest.fixture(scope="session")
def exports(tiny_run, tmp_path_factory):
    """tiny_run exported in every model format, through the library: format -> Exported."""
    from lstm_textgen.export.write import export

    folder = tmp_path_factory.mktemp("exports")
    return {fmt: export(tiny_run, fmt, folder / fmt) for fmt in ("savedmodel", "tflite", "onnx")}
