"""Read a model.keras file's layers and weights into numpy arrays with h5py, without TensorFlow or Keras."""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lstm_textgen.errors import CheckpointError


@dataclass
class ModelWeights:
    """The trained stack as numpy arrays, read from model.keras without TensorFlow."""
    layers: list[dict]  # [{"class_name": "LSTM", "config": {...}, "weights": [arrays]}], Input layer excluded
    extra: dict = field(default_factory=dict)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def read_model_weights(path: Path) -> ModelWeights:
    """Read config.json and model.weights.h5 from a .keras zip into numpy arrays."""
    import h5py

    try:
        with zipfile.ZipFile(path) as archive:
            spec = json.loads(archive.read("config.json"))
            h5_bytes = archive.read("model.weights.h5")
        layers = []
        with h5py.File(io.BytesIO(h5_bytes), "r") as h5:
            seen: dict[str, int] = {}
            for layer in spec["config"]["layers"]:
                if layer["class_name"] == "InputLayer":
                    continue
                base = _snake(layer["class_name"])
                key = base if base not in seen else f"{base}_{seen[base]}"  # Keras numbers repeats _1, _2, ...
                seen[base] = seen.get(base, 0) + 1
                group = h5["layers"][key]
                layers.append({"class_name": layer["class_name"], "config": layer["config"],
                               "weights": _group_weights(group)})
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as e:
        raise CheckpointError(f"{path} is corrupt or not a Keras model ({type(e).__name__}); "
                              f"retrain, or copy back a checkpoint from {path.parent / 'checkpoints'}") from None
    return ModelWeights(layers)


def _group_weights(group) -> dict:
    """{'vars': [arrays]} for plain layers; nested dicts for cells and Bidirectional halves."""
    out: dict = {}
    for name, item in group.items():
        if name == "vars":
            out["vars"] = [item[str(i)][()] for i in range(len(item))]
        else:
            out[name] = _group_weights(item)
    return out
