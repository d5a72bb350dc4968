"""The web export's files: a static page that writes offline (index.html: serve's writing page, page.html, with its
backend block swapped for export/web/backend.html, which steps the model in the page with the engine
lstm-textgen.js), the weights as one binary file, model.json that describes them, and data.js for pages opened
from disk; and web_stepper(), the numpy stepper read back from those bytes, which checks the export against the run.

weights.bin: little-endian tensors back to back, each starting at a multiple of 4 bytes. A tensor is float32, or
float16 (IEEE half), or int8 with one float32 scale per column (value = q * scale[column], symmetric, the scales
stored after the int8 values); int8 and float16 apply to 2-D matrices only, bias vectors are always float32.

model.json:
  format, version          "lstm-textgen-web", 1
  quantize                 null (float32), "float16" or "int8"
  vocab_size, bytes        the vocabulary's size and weights.bin's length
  tokenizer                {level, lowercase, file: "tokenizer.json"} (the run's tokenizer.json, a byte copy)
  masked_ids               ids whose embedding row is all zeros: the model's Masking layer skips them (the state is
                           kept), as the numpy stepper does; listed from the float32 weights, so that quantizing
                           cannot mask a row
  layers                   input to output: {kind: "Embedding", tensors: [embeddings]};
                           {kind: "LSTM" | "GRU", units, activation, recurrent_activation, reset_after (GRU),
                            tensors: [kernel, recurrent_kernel, bias]} (a GRU with reset_after's bias has 2 rows:
                            input, recurrent); {kind: "Dense", units, activation, tensors: [kernel, bias]} twice:
                           the hidden Dense, then the output Dense (logits: its softmax is the sampler's)
  tensors                  name -> {dtype: float32 | float16 | int8, shape, offset, scale_offset (int8 only)}
  generate                 the run's generate: settings (all but chat_template), the page's defaults

data.js: `window.LSTM_TEXTGEN_DATA = {model, tokenizer, weights}` with weights.bin in base64, all ASCII: Chromium
lets no page opened from disk (file://) fetch() the files beside it, but it runs a script beside it.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import re
from importlib import resources

import numpy as np

from lstm_textgen.errors import TextgenError
from lstm_textgen.model.stepper import Stepper
from lstm_textgen.model.weights import ModelWeights
from lstm_textgen.outputs import STAMP
from lstm_textgen.serve.pages import page

FORMAT, VERSION = "lstm-textgen-web", 1
QUANTIZE = (None, "float16", "int8")
BACKEND = re.compile(r"<!-- backend:.*?<!-- /backend -->", re.S)  # page.html's block that reaches the model
GENERATOR = '<meta name="generator" content="lstm-textgen">'
ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear", "hard_sigmoid")  # what the page's engine steps
_IGNORED = ("Masking", "Dropout", "InputLayer")  # no weights the page needs (Masking: masked_ids)


def web_files(run, quantize: str | None = None) -> dict[str, bytes]:
    """The export folder's files by name (tokenizer.json, manifest.json and README.md are written beside them)."""
    model, weights = pack_model(run.weights, quantize)
    tokenizer = json.loads((run.run_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model["tokenizer"] = {"level": tokenizer["level"], "lowercase": bool(tokenizer["lowercase"]),
                          "file": "tokenizer.json"}
    model["generate"] = {key: value for key, value in dataclasses.asdict(run.config.generate).items()
                         if key != "chat_template"}
    web = resources.files("lstm_textgen.export").joinpath("web")
    index = web_page(page("page.html"), web.joinpath("backend.html").read_text(encoding="utf-8"))
    files = {"index.html": index.encode("utf-8"), "lstm-textgen.js": web.joinpath("lstm-textgen.js").read_bytes()}
    files["model.json"] = (json.dumps(model, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    files["weights.bin"] = weights
    files["data.js"] = data_script(model, tokenizer, weights)
    return files


def web_page(html: str, backend: str) -> str:
    """index.html: the writing page (html, serve's page.html) with its one backend block, from `<!-- backend:` to
    `<!-- /backend -->`, swapped for backend (export/web/backend.html), and the program's stamp."""
    if len(BACKEND.findall(html)) != 1 or html.count(GENERATOR) != 1:
        raise ValueError(f"the writing page must hold one backend block (<!-- backend: ... <!-- /backend -->) and "
                         f"one {GENERATOR}; it holds {len(BACKEND.findall(html))} and {html.count(GENERATOR)}")
    return BACKEND.sub(lambda _: backend.strip(), html).replace(GENERATOR, f'<meta name="generator" content="{STAMP}">')


def data_script(model: dict, tokenizer: dict, weights: bytes) -> bytes:
    """data.js: the model, the tokenizer and the weights (base64) as one script, for pages opened from disk."""
    data = {"model": model, "tokenizer": tokenizer, "weights": base64.b64encode(weights).decode("ascii")}
    return b"window.LSTM_TEXTGEN_DATA = " + json.dumps(data, separators=(",", ":")).encode("ascii") + b";\n"


class _Packer:
    """weights.bin written tensor by tensor, and each tensor's entry in model.json."""

    def __init__(self, quantize: str | None):
        if quantize not in QUANTIZE:
            raise TextgenError(f"quantize {quantize!r} is not one the web export knows; use float16 or int8, or "
                               "none for float32")
        self.quantize, self.parts, self.size, self.tensors = quantize, [], 0, {}

    def _write(self, data: bytes) -> int:
        offset = self.size
        self.parts.append(data + b"\0" * (-len(data) % 4))
        self.size += len(self.parts[-1])
        return offset

    def add(self, name: str, array: np.ndarray, matrix: bool) -> str:
        """Append one tensor (a 2-D matrix is quantized when asked, anything else stays float32); returns its name."""
        array = np.asarray(array, np.float32)
        dtype = self.quantize if matrix and array.ndim == 2 and self.quantize else "float32"
        entry = {"dtype": dtype, "shape": list(array.shape)}
        if dtype == "int8":
            scale = np.abs(array).max(axis=0) / 127.0
            scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
            q = np.clip(np.rint(array / scale), -127, 127).astype(np.int8)
            entry["offset"] = self._write(q.tobytes())
            entry["scale_offset"] = self._write(scale.astype("<f4").tobytes())
        else:
            entry["offset"] = self._write(array.astype("<f2" if dtype == "float16" else "<f4").tobytes())
        self.tensors[name] = entry
        return name


def pack_model(weights: ModelWeights, quantize: str | None = None) -> tuple[dict, bytes]:
    """model.json's layers and tensors (without the tokenizer and generate entries) and weights.bin."""
    packer, layers, masked_ids = _Packer(quantize), [], []
    for layer in weights.layers:
        kind, config, w = layer["class_name"], layer["config"], layer["weights"]
        name = config.get("name", kind.lower())
        if kind == "Embedding":
            embedding = np.asarray(w["vars"][0], np.float32)
            masked_ids = np.flatnonzero(~embedding.any(axis=1)).tolist()
            layers.append({"kind": kind, "tensors": [packer.add(f"{name}/embeddings", embedding, True)]})
        elif kind in ("LSTM", "GRU"):
            layers.append(_recurrent(packer, kind, name, config, w["cell"]["vars"]))
        elif kind == "Dense":
            layers.append({"kind": kind, "units": int(config["units"]), "activation": _activation(config, name, kind),
                           "tensors": [packer.add(f"{name}/kernel", w["vars"][0], True),
                                       packer.add(f"{name}/bias", _bias(w["vars"], 1, w["vars"][0].shape[1]), False)]})
        elif kind == "Bidirectional":
            raise TextgenError(f"layer {name} is bidirectional: its backward half reads the whole text again at "
                               "every step, which the web page cannot do; export a run trained with "
                               "model.bidirectional=false")
        elif kind not in _IGNORED:
            raise TextgenError(f"layer {name} ({kind}) is not one the web page can step; export a run of "
                               "lstm-textgen's own stack")
    kinds = [layer["kind"] for layer in layers]
    if (len(kinds) < 4 or kinds[0] != "Embedding" or kinds[-2:] != ["Dense", "Dense"]
            or any(kind not in ("LSTM", "GRU") for kind in kinds[1:-2]) or layers[-2]["activation"] == "softmax"):
        raise TextgenError(f"the run's model ({', '.join(kinds)}) is not an embedding, recurrent layers and two Dense "
                           "layers; the web page steps only that stack")
    layers[-1]["activation"] = "linear"  # the output's softmax is the sampler's: the page reads logits
    data = b"".join(packer.parts)
    model = {"format": FORMAT, "version": VERSION, "quantize": quantize, "vocab_size": layers[-1]["units"],
             "bytes": len(data), "masked_ids": masked_ids, "layers": layers, "tensors": packer.tensors}
    return model, data


def _recurrent(packer: _Packer, kind: str, name: str, config: dict, cell: list) -> dict:
    units = int(config["units"])
    gates = 4 if kind == "LSTM" else 3
    reset_after = kind == "GRU" and bool(config.get("reset_after", True))
    bias = _bias(cell, 2, (2, gates * units) if reset_after else gates * units)
    layer = {"kind": kind, "units": units, "activation": _activation(config, name, kind),
             "recurrent_activation": _activation(config, name, kind, "recurrent_activation", "sigmoid"),
             "tensors": [packer.add(f"{name}/kernel", cell[0], True),
                         packer.add(f"{name}/recurrent_kernel", cell[1], True),
                         packer.add(f"{name}/bias", bias, False)]}
    if kind == "GRU":
        layer["reset_after"] = reset_after
    return layer


def _bias(arrays: list, index: int, shape) -> np.ndarray:
    """The layer's bias, or zeros for a layer without one (use_bias false)."""
    return np.asarray(arrays[index], np.float32) if len(arrays) > index else np.zeros(shape, np.float32)


def _activation(config: dict, name: str, kind: str, key: str = "activation", default: str = "linear") -> str:
    value = config.get(key, default)
    if isinstance(value, dict):  # a serialised activation object
        value = value.get("config", {}).get("name", value.get("class_name"))
    if kind == "Dense" and value == "softmax":
        return value  # the output layer's: the page reads its logits
    if value not in ACTIVATIONS:
        raise TextgenError(f"layer {name}'s {key} {value!r} is not one the web page steps (it steps "
                           f"{', '.join(ACTIVATIONS)}); export a run trained with one of those")
    return value


def read_tensor(model: dict, weights: bytes, name: str) -> np.ndarray:
    """One tensor of weights.bin as float32, dequantized as the page's engine does."""
    entry = model["tensors"][name]
    shape, dtype, offset = tuple(entry["shape"]), entry["dtype"], entry["offset"]
    count = int(np.prod(shape, dtype=np.int64))
    width = {"float32": 4, "float16": 2, "int8": 1}[dtype]
    end = max(offset + count * width, entry.get("scale_offset", 0) + 4 * (shape[-1] if dtype == "int8" else 0))
    if end > len(weights):
        raise TextgenError(f"weights.bin holds {len(weights):,} bytes, but model.json places {name} up to byte "
                           f"{end:,}; write the export again")
    if dtype == "int8":
        q = np.frombuffer(weights, np.int8, count, offset).reshape(shape)
        scale = np.frombuffer(weights, "<f4", shape[-1], entry["scale_offset"])
        return q.astype(np.float32) * scale
    return np.frombuffer(weights, "<f2" if dtype == "float16" else "<f4", count, offset).reshape(shape).astype(
        np.float32)


def web_stepper(model: dict, weights: bytes) -> Stepper:
    """The numpy Stepper of the exported model, read from model.json and weights.bin as the page reads them."""
    def tensors(layer):
        return [read_tensor(model, weights, name) for name in layer["tensors"]]

    layers = []
    for layer in model["layers"]:
        kind = layer["kind"]
        if kind == "Embedding":
            layers += [{"class_name": kind, "config": {}, "weights": {"vars": tensors(layer)}},
                       {"class_name": "Masking", "config": {}, "weights": {}}]
        elif kind in ("LSTM", "GRU"):
            config = {key: layer[key] for key in ("units", "activation", "recurrent_activation", "reset_after")
                      if key in layer}
            layers.append({"class_name": kind, "config": config, "weights": {"cell": {"vars": tensors(layer)}}})
        else:
            layers.append({"class_name": kind, "config": {"activation": layer["activation"]},
                           "weights": {"vars": tensors(layer)}})
    stepper = Stepper(ModelWeights(layers))
    stepper.masked_ids = np.zeros(len(stepper.embedding), bool)
    stepper.masked_ids[model["masked_ids"]] = True  # as listed, not as the dequantized rows would say
    stepper.any_masked = bool(stepper.masked_ids.any())
    return stepper
