"""Reading run directories back for people: `info` and `runs` (no TensorFlow)."""
from __future__ import annotations

import math
import os
import time
import zipfile
from pathlib import Path

from lstm_textgen.curves import best_epoch, read_history
from lstm_textgen.fast.h5 import read_model_weights
from lstm_textgen.finetune import saved_origin
from lstm_textgen.rundir import (CONFIG, HISTORY, MODEL, TOKENIZER, check_run_dir, check_run_files, folder_kind,
                                 load_saved_config, load_tokenizer, read_metrics)
from lstm_textgen.errors import TextgenError


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
    """What a run is and how it went, from its files alone (TensorFlow is not imported)."""
    run_dir = Path(run_dir)
    check_run_files(run_dir)
    config = load_saved_config(run_dir)
    tokenizer = load_tokenizer(run_dir)
    metrics = read_metrics(run_dir)
    layers = None
    if (run_dir / MODEL).is_file():
        layers = [{"name": layer["config"].get("name", ""), "class_name": layer["class_name"],
                   "description": _describe(layer), "parameters": _count(layer["weights"])}
                  for layer in read_model_weights(run_dir / MODEL).layers]
    history = read_history(run_dir)
    return {
        "run": str(run_dir),
        "corpus": config.data.corpus,
        "val_corpus": config.data.val_corpus,
        "train_tokens": metrics.get("train_tokens"),
        "val_tokens": metrics.get("val_tokens"),
        "level": tokenizer.level,
        "lowercase": tokenizer.lowercase,
        "vocab_size": tokenizer.vocab_size,
        "objective": config.model.objective,
        "window_size": config.data.window_size,
        "layers": layers,
        "parameters": sum(layer["parameters"] for layer in layers) if layers is not None else None,
        "epochs": len(history.get("epoch", [])),
        "planned_epochs": config.train.epochs,
        "best_epoch": metrics.get("best_epoch") or best_epoch(history),
        "best_val_perplexity": _finite(metrics.get("best_val_perplexity")),
        "best_val_bits_per_char": _finite(metrics.get("best_val_bits_per_char")),
        "stopped_early": metrics.get("stopped_early", False),
        "tokens_seen": metrics.get("tokens_seen"),
        "tokens_per_second": metrics.get("tokens_per_second"),
        "embedding_coverage": metrics.get("embedding_coverage"),
        "embedding_path": config.embedding.path,
        "origin": saved_origin(run_dir),  # a fine-tuned run's base
        "files": _files(run_dir),
    }


def _finite(value) -> float | None:
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


def format_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _maybe(value, fmt: str = "{:,}") -> str:
    return "-" if value is None else fmt.format(value)


def format_info(info: dict) -> str:
    """run_info() as aligned text for the terminal."""
    lines = [f"run          {info['run']}",
             f"corpus       {info['corpus']} ({_maybe(info['train_tokens'])} training and "
             f"{_maybe(info['val_tokens'])} validation tokens"
             f"{'' if info['val_corpus'] is None else ' from ' + info['val_corpus']})",
             f"tokenizer    {info['level']} level, {'lower-cased' if info['lowercase'] else 'case kept'}, "
             f"vocabulary {info['vocab_size']:,} (with <pad> and <unk>)"]
    if info["layers"] is None:
        lines.append(f"model        no {MODEL} yet (no epoch has finished)")
    else:
        lines.append(f"model        {_maybe(info['parameters'])} parameters, objective {info['objective']}, "
                     f"window {info['window_size']}")
        name_width = max(len(layer["name"]) for layer in info["layers"])
        kind_width = max(len(layer["class_name"]) for layer in info["layers"])
        for layer in info["layers"]:
            lines.append(f"  {layer['name']:<{name_width}}  {layer['class_name']:<{kind_width}}  "
                         f"{layer['parameters']:>12,}  {layer['description']}")
    stopped = ", stopped early" if info["stopped_early"] else ""
    lines.append(f"training     {info['epochs']} of {info['planned_epochs']} epochs{stopped}; best epoch "
                 f"{_maybe(info['best_epoch'])}, val perplexity {_maybe(info['best_val_perplexity'], '{:,.2f}')}, "
                 f"{_maybe(info['best_val_bits_per_char'], '{:.3f}')} bits per character")
    lines.append(f"speed        {_maybe(info['tokens_per_second'], '{:,.0f}')} tokens/s "
                 f"({_maybe(info['tokens_seen'])} tokens seen)")
    origin = info["origin"]
    if origin:
        vocabulary = ("kept" if origin.get("base_vocab") == "keep" else
                      f"extended by {_maybe(origin.get('added_tokens'))} tokens")
        lines.append(f"base run     {origin.get('init_from')} ({origin.get('path')}; config sha256 "
                     f"{str(origin.get('config_sha256'))[:12]}, best val perplexity "
                     f"{_maybe(_finite(origin.get('best_val_perplexity')), '{:,.2f}')}); its vocabulary {vocabulary}, "
                     f"{_maybe(origin.get('unknown_share'), '{:.1%}')} of the corpus's tokens unknown to it")
    coverage = info["embedding_coverage"]
    if coverage:
        lines.append(f"embedding    {coverage.get('path', info['embedding_path'])}: "
                     f"{coverage['vocab_share']:.1%} of the vocabulary, {coverage['token_share']:.1%} of corpus tokens")
    else:
        lines.append("embedding    " + ("the base run's, then trained on (unless frozen)" if origin else
                                      "learned from scratch (no pretrained vectors)"))
    lines.append("files")
    width = max(len(entry["name"]) for entry in info["files"]) if info["files"] else 0
    for entry in info["files"]:
        count = f"  ({entry['files']} files)" if "files" in entry else "  (a link to a file that is gone)" if entry.get(
            "broken") else ""
        lines.append(f"  {entry['name']:<{width}}  {format_size(entry['bytes']):>9}{count}")
    total = sum(entry["bytes"] for entry in info["files"])
    lines.append(f"  {'total':<{width}}  {format_size(total):>9}")
    return "\n".join(lines)


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
    """A run's line; a damaged run still gets one, saying what is wrong (the others are listed as usual)."""
    metrics, status, corpus = read_metrics(run_dir), "ok", "?"
    try:
        corpus = load_saved_config(run_dir).data.corpus
        check_run_dir(run_dir)
        load_tokenizer(run_dir)
        if not zipfile.is_zipfile(run_dir / MODEL):
            status = f"damaged: {MODEL}"
    except TextgenError as e:
        status = ("not trained yet" if f"has no {MODEL} yet" in str(e)
                  else f"damaged: {_damaged_file(run_dir, str(e))}")
    try:
        epochs = len(read_history(run_dir).get("epoch", []))
    except TextgenError:
        epochs, status = 0, status if status != "ok" else f"damaged: {HISTORY}"
    sizes = [(p.stat().st_size, p.stat().st_mtime) for p in run_dir.rglob("*") if p.is_file()]
    name = run_dir.relative_to(folder).as_posix()
    return {"name": folder.name if name == "." else name, "path": str(run_dir), "corpus": corpus, "epochs": epochs,
            "best_val_perplexity": _finite(metrics.get("best_val_perplexity")),
            "best_val_bits_per_char": _finite(metrics.get("best_val_bits_per_char")), "status": status,
            "bytes": sum(size for size, _ in sizes),
            "modified": max((mtime for _, mtime in sizes), default=run_dir.stat().st_mtime)}


def _damaged_file(run_dir: Path, message: str) -> str:
    """Which of the run's files an error names."""
    return next((name for name in (CONFIG, TOKENIZER, MODEL, HISTORY) if name in message), "see lstm-textgen info")


def format_runs_table(rows: list[dict]) -> str:
    """list_runs() rows as an aligned table with a header."""
    header = ("name", "corpus", "epochs", "best val ppl", "bits/char", "size", "last modified", "status")
    table = [header] + [(row["name"], row["corpus"], str(row["epochs"]), _maybe(row["best_val_perplexity"], "{:,.2f}"),
                         _maybe(row["best_val_bits_per_char"], "{:.3f}"), format_size(row["bytes"]),
                         time.strftime("%Y-%m-%d %H:%M", time.localtime(row["modified"])), row["status"])
             for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    right = {2, 3, 4, 5}  # numbers line up on the right
    return "\n".join("  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(line, widths))).rstrip() for line in table)
