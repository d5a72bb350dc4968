"""Each model format written from a real Keras model and opened with its own runtime: the same probabilities as
the model, the signatures' shapes, and quantized files that are smaller."""
from __future__ import annotations

import numpy as np
import pytest

from lstm_textgen.config import load_config
from lstm_textgen.errors import ExportError
from lstm_textgen.export import formats
from lstm_textgen.export.graph import signatures
from lstm_textgen.model.stack import build_model

VOCAB, WINDOW = 3000, 6


@pytest.fixture(scope="module")
def model():
    """An untrained 2 x 64 LSTM over 3,000 tokens: its matrices, not its biases, make its size."""
    import keras

    keras.utils.set_random_seed(0)
    config = load_config(None, ["model.units=64", "model.layers=2", "model.dense_units=64"]).model
    built = build_model(config, VOCAB, 32)
    built(np.zeros((1, WINDOW), np.int32))
    return built


def _write(fmt, model, folder, quantize=None):
    folder.mkdir()
    sigs = signatures(model, (1, WINDOW) if fmt == "tflite" else (None, None), fmt == "tflite" and quantize == "int8")
    if fmt == "onnx":
        formats.write_onnx(sigs, folder, quantize)
        return formats.open_onnx(folder)
    formats.write_savedmodel(sigs, folder)
    if fmt == "savedmodel":
        return formats.open_savedmodel(folder)
    formats.write_tflite(folder, quantize)
    return formats.open_tflite(folder)


def _size(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and "saved_model" not in p.parts)


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_each_runtime_gives_the_models_probabilities(fmt, model, tmp_path):
    runner = _write(fmt, model, tmp_path / fmt)
    ids = np.array([[5, 9, 2, 700, 2999, 14]], np.int32)
    expected = model(ids, training=False).numpy()
    np.testing.assert_allclose(runner.window(ids), expected, atol=1e-5)
    state = {f"{part}{i}": np.zeros((1, 64), np.float32) for i in range(2) for part in "hc"}
    for t, token in enumerate(ids[0]):
        probs, state = runner.step(np.array([token], np.int32), state)
        np.testing.assert_allclose(probs[0], expected[0, t], atol=1e-5)
    assert sorted(state) == ["c0", "c1", "h0", "h1"]
    assert runner.window_shape == ((1, WINDOW) if fmt == "tflite" else (None, None))
    assert all((tmp_path / fmt / name).exists() for name in formats.FILES[fmt])


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_quantized_files_are_smaller_and_close(fmt, model, tmp_path):
    plain = _write(fmt, model, tmp_path / "float32")
    sizes = {"float32": _size(tmp_path / "float32")}
    ids = np.array([[5, 9, 2, 700, 2999, 14]], np.int32)
    for kind in ("int8", "float16"):
        runner = _write(fmt, model, tmp_path / kind, kind)
        sizes[kind] = _size(tmp_path / kind)
        np.testing.assert_allclose(runner.window(ids), plain.window(ids), atol=2e-3)
    # every matrix is stored in int8; what is left over is biases and the per-column scales (the benchmark measures
    # the share at the reference size, where the matrices weigh more against them)
    assert sizes["int8"] <= 0.36 * sizes["float32"], sizes
    assert sizes["float16"] <= 0.55 * sizes["float32"], sizes
    assert _large_matrix_types(fmt, tmp_path / "int8") <= {"int8", "uint8"}  # onnxruntime keeps Gather's in uint8


def _large_matrix_types(fmt, folder) -> set[str]:
    """The element types of the stored weight tensors of 10,000 values or more."""
    if fmt == "onnx":
        import onnx

        found = set()
        for name in ("step.onnx", "window.onnx"):
            for tensor in onnx.load(str(folder / name)).graph.initializer:
                if np.prod(tensor.dims) >= 10_000:
                    found.add(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).name)
        return found
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(folder / "model.tflite")).get_tensor_details()
    weights = [d for d in details if np.prod(d["shape"]) >= 10_000 and ("MatMul" in d["name"] or d["name"].startswith("Const"))]
    assert len(weights) >= 4  # the embedding, the output layer and each LSTM's two kernels
    return {np.dtype(d["dtype"]).name for d in weights}


def test_a_missing_runtime_is_one_line_saying_how_to_install_it():
    with pytest.raises(ExportError, match=r"--format onnx needs no_such_runtime, part of the export extra; install "
                                          r"it with: pip install 'lstm-textgen\[export\]'"):
        formats.need("no_such_runtime.sub", "onnx")
