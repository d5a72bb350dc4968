"""The model formats: each written from the run's signatures (graph.py) and opened again with its own runtime
(TensorFlow for a SavedModel, LiteRT for TFLite, onnxruntime for ONNX), as a Runner the check and the benchmark
call. The converters and runtimes other than TensorFlow are the `export` extra, imported only here. `sigs` below
is a graph.Signatures (graph.py imports TensorFlow, which the web page and the errors before it never need)."""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from lstm_textgen.errors import ExportError

PROBABILITIES = "probabilities"  # the output every signature has

QUANTIZE = {"savedmodel": (), "tflite": ("float16", "int8"), "onnx": ("float16", "int8"), "web": ("float16", "int8")}
FILES = {"savedmodel": ["saved_model"], "tflite": ["model.tflite"], "onnx": ["step.onnx", "window.onnx"]}
OPSET = 17
EXTRA = "pip install 'lstm-textgen[export]'"


@dataclass
class Runner:
    """An export opened with its runtime: step(token ids (batch,), states) -> (probabilities, states) and
    window(tokens (batch, time)) -> probabilities; states is a dict of the step signature's state inputs."""
    step: Callable[[np.ndarray, dict], tuple[np.ndarray, dict]]
    window: Callable[[np.ndarray], np.ndarray]
    window_shape: tuple  # (batch, time) the window signature takes, None where any


def need(module: str, fmt: str):
    """Import a module of the export extra, or say in one line how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"--format {fmt} needs {module.split('.')[0]}, part of the export extra; install it with: "
                          f"{EXTRA}") from None


def _next(outputs: dict) -> tuple[np.ndarray, dict]:
    states = {name[:-len("_next")]: np.asarray(v) for name, v in outputs.items() if name.endswith("_next")}
    return np.asarray(outputs[PROBABILITIES]), states


# --- SavedModel ------------------------------------------------------------------------------------------
def write_savedmodel(sigs, folder: Path) -> None:
    """A SavedModel with the two signatures (and `window` as serving_default), through Keras' ExportArchive. The
    model is not track()ed: the functions capture its variables, and tracking them as well saved every weight
    twice (19.4 MB instead of 9.7 MB for the demo's model)."""
    import keras

    archive = keras.export.ExportArchive()
    archive.add_endpoint("window", sigs.window, input_signature=sigs.window_specs)
    archive.add_endpoint("step", sigs.step, input_signature=sigs.step_specs)
    with _quiet():
        archive.write_out(str(folder / "saved_model"), verbose=False)


def open_savedmodel(folder: Path, quantize: str | None = None) -> Runner:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder / "saved_model"))
    step, window = loaded.signatures["step"], loaded.signatures["window"]
    return Runner(lambda token, states: _next(step(token=tf.constant(token, tf.int32),
                                                   **{k: tf.constant(v) for k, v in states.items()})),
                  lambda tokens: window(tokens=tf.constant(tokens, tf.int32))[PROBABILITIES].numpy(), (None, None))


# --- TFLite ----------------------------------------------------------------------------------------------
def write_tflite(folder: Path, quantize: str | None) -> None:
    """model.tflite from the SavedModel already written in folder (builtin ops only: every LiteRT runs it);
    float16: weights stored in half precision; int8: dynamic-range quantization (int8 weights, float activations)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved_model"), signature_keys=["step", "window"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
    with _quiet():
        try:
            data = converter.convert()
        except Exception as e:  # the converter's own ConverterError, with MLIR's diagnostics
            raise ExportError(f"TensorFlow's TFLite converter could not convert the model: "
                              f"{str(e).strip().splitlines()[-1][:300]}") from None
    (folder / "model.tflite").write_bytes(data)


def open_tflite(folder: Path, quantize: str | None = None) -> Runner:
    interpreter_module = need("ai_edge_litert.interpreter", "tflite")
    with _quiet():
        interpreter = interpreter_module.Interpreter(model_path=str(folder / "model.tflite"))
    step, window = interpreter.get_signature_runner("step"), interpreter.get_signature_runner("window")
    shape = _tflite_window_shape(interpreter)
    return Runner(lambda token, states: _next(step(token=np.asarray(token, np.int32), **states)),
                  lambda tokens: window(tokens=np.asarray(tokens, np.int32))[PROBABILITIES], shape)


def _tflite_window_shape(interpreter) -> tuple:
    details = interpreter.get_signature_runner("window").get_input_details()["tokens"]
    return tuple(int(n) for n in details["shape"])


# --- ONNX ------------------------------------------------------------------------------------------------
def write_onnx(sigs, folder: Path, quantize: str | None) -> None:
    """step.onnx and window.onnx (an ONNX model has one graph), converted by tf2onnx from the same functions;
    int8: onnxruntime's dynamic quantization (int8 weights of MatMul and Gather, one scale per column: with one
    per tensor the demo's int8 model chose the run's likeliest token on 98.9% of 2,000 positions, with one per
    column on 99.4%); float16: onnxruntime's float16 conversion, inputs and outputs kept float32."""
    tf2onnx = need("tf2onnx", "onnx")
    from keras.src.export.tf2onnx_lib import patch_tf2onnx  # Keras' own fix of tf2onnx under numpy 2

    with warnings.catch_warnings():  # its np.object probe warns under numpy 2
        warnings.simplefilter("ignore", FutureWarning)
        patch_tf2onnx()
    for name, function, specs in (("step", sigs.step, sigs.step_specs), ("window", sigs.window, sigs.window_specs)):
        path = folder / f"{name}.onnx"
        with _quiet():
            proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=OPSET)
        if quantize == "float16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            proto = convert_float_to_float16(proto, keep_io_types=True)
        path.write_bytes(proto.SerializeToString())
        if quantize == "int8":
            quantization = need("onnxruntime.quantization", "onnx")
            with _quiet():
                quantization.quantize_dynamic(path, path, weight_type=quantization.QuantType.QInt8, per_channel=True)


def open_onnx(folder: Path, quantize: str | None = None) -> Runner:
    ort = need("onnxruntime", "onnx")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    step, window = (ort.InferenceSession(str(folder / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
                    for name in ("step", "window"))
    step_out = [o.name for o in step.get_outputs()]

    def run_step(token, states):
        values = step.run(None, {"token": np.asarray(token, np.int32), **states})
        return _next(dict(zip(step_out, values)))

    return Runner(run_step, lambda tokens: window.run([PROBABILITIES], {"tokens": np.asarray(tokens, np.int32)})[0],
                  (None, None))


@contextlib.contextmanager
def _quiet():
    """The converters' progress chatter (absl and Python logging, prints) kept off the person's terminal."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)
