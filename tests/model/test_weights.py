"""The h5 weight reader: a model.keras file's layers and weights in numpy, without TensorFlow, equal to what
Keras itself holds (the numpy stepper and `info` read them this way)."""
import subprocess
import sys

import keras
import numpy as np
import pytest

from lstm_textgen.config import load_config
from lstm_textgen.errors import CheckpointError
from lstm_textgen.model.weights import read_model_weights
from lstm_textgen.model.stack import build_model


def flat(weights: dict) -> list[np.ndarray]:
    """A layer's nested {'vars': [...], 'cell': {...}} weights in Keras' get_weights() order."""
    out = list(weights.get("vars", []))
    for name in ("cell", "forward_layer", "backward_layer"):
        if name in weights:
            out += flat(weights[name])
    return out


@pytest.mark.parametrize("overrides", [[], ["model.rnn=gru", "model.layers=2"],
                                       ["model.bidirectional=true", "model.objective=last"]])
def test_the_weights_read_equal_keras_own(tmp_path, overrides):
    config = load_config(None, ["model.units=6", "model.dense_units=5", "embedding.dim=4", *overrides])
    keras.utils.set_random_seed(2)
    model = build_model(config.model, 30, config.embedding.dim)
    model.save(tmp_path / "model.keras")
    read = read_model_weights(tmp_path / "model.keras")
    layers = [layer for layer in model.layers]
    assert [entry["class_name"] for entry in read.layers] == [type(layer).__name__ for layer in layers]
    for entry, layer in zip(read.layers, layers):
        assert entry["config"]["name"] == layer.name
        expected = layer.get_weights()
        got = flat(entry["weights"])
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


def test_reading_needs_no_tensorflow(tiny_run):
    code = ("import sys\nfrom lstm_textgen.model.weights import read_model_weights\n"
            f"weights = read_model_weights({str(tiny_run / 'model.keras')!r})\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "print(len(weights.layers))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6"  # embedding, masking, lstm_1, dense, dense_dropout, next_word


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04 cut short"])
def test_a_damaged_file_is_named(tmp_path, content):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"{path} is corrupt or not a Keras model"):
        read_model_weights(path)
