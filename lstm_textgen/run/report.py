"""Reading run directories back for people: `info` and `runs` (no TensorFlow)."""
from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

from lstm_textgen.run.curves import best_epoch, read_history
from lstm_textgen.model.weights import read_model_weights
from lstm_textgen.errors import CheckpointError, TextgenError
from lstm_textgen.run.state import TrainingState, is_hdf5
from lstm_textgen.run.files import (CHECKPOINTS, CONFIG, HISTORY, METRICS, MODEL, STATE, TOKENIZER,
                                    epoch_checkpoints, folder_kind)
from lstm_textgen.run.rundir import (check_is_run, check_model, has_trained, load_saved_config, load_tokenizer,
                                     read_metrics, saved_origin)
from lstm_textgen.config.values import shown

STATE_PATH = f"{CHECKPOINTS}/{STATE}"  # how info and runs name the training state


def _count(weights: dict) -> int:
    """Parameters in a layer's nested {'vars': [arrays], 'cell': {...}} weights."""
    return sum(a.size for a in weights.get("vars", [])) + sum(
        _count(sub) for name, sub in weights.items() if name != "vars" and "seed_generator" not in name)


def _describe(layer: dict) -> str:
    frozen = "" if layer["config"].get("trainable", True) else ", frozen"  # a frozen pretrained matrix, train.freeze
    return _layer_shape(layer) + frozen


def _layer_shape(layer: dict) -> str:
    kind, config = layer["class_name"], layer["config"]
    if kind == "Embedding":
        return f"{config['input_dim']:,} x {config['output_dim']}"
    if kind == "Bidirectional":
        inner = config["layer"]["config"]
        return f"{config['layer']['class_name']} {inner['units']} units x 2 directions"
    if kind in ("LSTM", "GRU"):
        extra = ", returns sequences" if config.get("return_sequences") else ""
        return f"{config['units']} units, dropout {config.get('dropout', 0)}{extra}"
    if kind == "Dense":
        activation = config.get("activation")
        activation = activation if isinstance(activation, str) else "custom"
        return f"{config['units']:,} units, {activation}"
    if kind == "Dropout":
        return f"rate {config['rate']}"
    if kind == "Masking":
        return f"mask value {config.get('mask_value')}"
    return ""


def run_info(run_dir: Path) -> dict:
    """What a run is and how it went, from its files alone (TensorFlow is not imported). Every run file is read
    with its own checks; what is damaged is listed under "damaged" (file and problem), and the rest still shown."""
    run_dir = Path(run_dir)
    check_is_run(run_dir)
    read = read_run(run_dir, layers=True)
    config, tokenizer, metrics, history, layers = (read[k] for k in ("config", "tokenizer", "metrics", "history",
                                                                      "layers"))
    data, model, train = (config.data, config.model, config.train) if config else (None, None, None)
    return {
        "run": str(run_dir),
        "corpus": data and data.corpus,
        "val_corpus": data and data.val_corpus,
        "train_tokens": metrics.get("train_tokens"),
        "val_tokens": metrics.get("val_tokens"),
        "level": tokenizer and tokenizer.level,
        "lowercase": tokenizer and tokenizer.lowercase,
        "vocab_size": tokenizer and tokenizer.vocab_size,
        "objective": model and model.objective,
        "window_size": data and data.window_size,
        "layers": layers,
        "parameters": sum(layer["parameters"] for layer in layers) if layers is not None else None,
        "epochs": len(history.get("epoch", [])),
        "planned_epochs": train and train.epochs,
        "best_epoch": metrics.get("best_epoch") or best_epoch(history),
        "best_val_perplexity": finite(metrics.get("best_val_perplexity")),
        "best_val_bits_per_char": finite(metrics.get("best_val_bits_per_char")),
        "stopped_early": metrics.get("stopped_early", False) is True,
        "tokens_seen": metrics.get("tokens_seen"),
        "tokens_per_second": metrics.get("tokens_per_second"),
        "embedding_coverage": metrics.get("embedding_coverage"),
        "embedding_path": config and config.embedding.path,
        "origin": read["origin"],  # a fine-tuned run's base
        "trained": has_trained(run_dir),
        "files": _files(run_dir),
        "damaged": read["damaged"],
    }


def read_run(run_dir: Path, layers: bool = False) -> dict:
    """Every file of a run read with its own checks: config, tokenizer, metrics, history, the model (its layers,
    with layers=True; else only that it is a Keras file), the training state and checkpoints, the origin; "damaged"
    lists {"file", "problem"} for each that is missing, cut short or of the wrong shape (the part is None or {})."""
    damaged: list[dict] = []

    def read(name: str, reader, default=None):
        try:
            return reader()
        except TextgenError as e:
            damaged.append({"file": name, "problem": str(e)})
            return default

    parts = {"config": read(CONFIG, lambda: load_saved_config(run_dir)),
             "tokenizer": read(TOKENIZER, lambda: load_tokenizer(run_dir)),
             "metrics": read(METRICS, lambda: _checked_metrics(run_dir), {}),
             "history": read(HISTORY, lambda: read_history(run_dir), {}),
             "layers": read(MODEL, lambda: _layers(run_dir, layers))}
    state = read(STATE_PATH, lambda: TrainingState.load(run_dir))
    if state is not None and state.saved.weights:
        read(f"{CHECKPOINTS}/{state.saved.weights}", lambda: check_state_weights(run_dir / CHECKPOINTS / state.saved.weights))
    for path in epoch_checkpoints(run_dir):
        read(f"{CHECKPOINTS}/{path.name}", lambda: check_epoch_checkpoint(path))
    parts["origin"] = read(CONFIG, lambda: saved_origin(run_dir)) if parts["config"] is not None else None
    return {**parts, "damaged": damaged}


def _checked_metrics(run_dir: Path) -> dict:
    """read_metrics, and the parts only info shows: the embedding coverage."""
    metrics = read_metrics(run_dir)
    coverage = metrics.get("embedding_coverage")
    if coverage is not None and not (isinstance(coverage, dict) and all(
            isinstance(coverage.get(k), (int, float)) for k in ("vocab_share", "token_share"))):
        raise CheckpointError(f"{run_dir / METRICS} is damaged (embedding_coverage is {shown(coverage)}); copy it "
                              "back from a backup of the run")
    return metrics


def _layers(run_dir: Path, layers: bool) -> list[dict] | None:
    """model.keras's layers (with layers, else [] once it is known to be a Keras file), or None before the first
    epoch ends; a model that is lost or damaged is an error."""
    check_model_or_untrained(run_dir)
    if not (run_dir / MODEL).is_file():
        return None
    if not layers:
        if not zipfile.is_zipfile(run_dir / MODEL):
            raise CheckpointError(f"{run_dir / MODEL} is corrupt or not a Keras model; retrain, or copy back a "
                                  f"checkpoint from {run_dir / CHECKPOINTS}")
        return []
    return [{"name": layer["config"].get("name", ""), "class_name": layer["class_name"],
             "description": _describe(layer), "parameters": _count(layer["weights"])}
            for layer in read_model_weights(run_dir / MODEL).layers]


def check_model_or_untrained(run_dir: Path) -> None:
    """check_model, except for a run that has not finished an epoch: it has no model yet, and is not damaged."""
    if (run_dir / MODEL).is_file() or has_trained(run_dir) or (run_dir / MODEL).is_symlink():
        check_model(run_dir)


def check_state_weights(path: Path) -> None:
    """The weights the training state names: readable as HDF5."""
    if not is_hdf5(path):
        raise CheckpointError(f"{path}, the weights where training stands, is missing or damaged; the next train "
                              "goes back to the last epoch checkpoint that loads")


def check_epoch_checkpoint(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is damaged (not a Keras file); delete it, or copy it back from a backup")


def finite(value) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _files(run_dir: Path) -> list[dict]:
    """Each entry of the run directory: name, bytes, and for a folder how many files it holds."""
    entries = []
    for path in sorted(run_dir.iterdir()):
        if path.name.startswith("."):  # temporary files of a write under way
            continue
        if path.is_dir():
            sizes = [p.stat().st_size for p in path.rglob("*") if p.is_file()]
            entries.append({"name": path.name + "/", "bytes": sum(sizes), "files": len(sizes)})
        elif path.exists():
            entries.append({"name": path.name, "bytes": path.stat().st_size})
        else:  # a link to a file that is gone
            entries.append({"name": path.name, "bytes": 0, "broken": True})
    return entries


def damage_error(run_dir, damaged: list[dict]) -> CheckpointError:
    """The one error line that info ends with for a damaged run: the first damaged file and what to do."""
    more = f" (and {len(damaged) - 1} more problem{'s' if len(damaged) > 2 else ''}, listed above)" if len(
        damaged) > 1 else ""
    return CheckpointError(f"run {run_dir} is damaged: {damaged[0]['problem']}{more}")


# --- runs ----------------------------------------------------------------------------------------
def list_runs(folder: Path) -> list[dict]:
    """One row per run directory under folder (at any depth; the folder itself may be one), by name."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise TextgenError(f"folder {folder} {what}; give the folder that holds your runs "
                           "(train writes them to runs/ by default)")
    rows = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        if folder_kind(Path(root)) == "run":
            dirs.clear()  # a run's own subfolders (checkpoints/, tokens/) hold no runs
            rows.append(_run_row(Path(root), folder))
    return sorted(rows, key=lambda row: row["name"])


def _run_row(run_dir: Path, folder: Path) -> dict:
    """A run's line; a damaged run still gets one, naming its damaged files (the others are listed as usual)."""
    read = read_run(run_dir)
    config, metrics, damaged = read["config"], read["metrics"], read["damaged"]
    status = ("damaged: " + ", ".join(dict.fromkeys(d["file"] for d in damaged)) if damaged else
              "ok" if read["layers"] is not None else "not trained yet")
    sizes = [(p.stat().st_size, p.stat().st_mtime) for p in run_dir.rglob("*") if p.is_file()]
    name = run_dir.relative_to(folder).as_posix()
    return {"name": folder.name if name == "." else name, "path": str(run_dir),
            "corpus": config.data.corpus if config else "?", "epochs": len(read["history"].get("epoch", [])),
            "best_val_perplexity": finite(metrics.get("best_val_perplexity")),
            "best_val_bits_per_char": finite(metrics.get("best_val_bits_per_char")), "status": status,
            "damaged": damaged, "bytes": sum(size for size, _ in sizes),
            "modified": max((mtime for _, mtime in sizes), default=run_dir.stat().st_mtime)}
