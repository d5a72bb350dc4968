"""export(): a run written as a SavedModel, TFLite, ONNX or a static web page, in a folder with tokenizer.json,
a README and manifest.json, checked against the run with the format's own runtime before it is put in place."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lstm_textgen import __version__
from lstm_textgen.errors import ExportError
from lstm_textgen.export import folder as folders
from lstm_textgen.export.check import Figures, check, stepper_runner
from lstm_textgen.export.formats import FILES, QUANTIZE, Runner, need
from lstm_textgen.export.readme import readme
from lstm_textgen.run.files import MODEL, TOKENIZER
from lstm_textgen.run.rundir import Run, load_run, saved_origin

FORMATS = tuple(QUANTIZE)
_NEEDS = {"tflite": ("ai_edge_litert.interpreter",), "onnx": ("tf2onnx", "onnxruntime")}


@dataclass
class Exported:
    """What export() wrote, and how close it came to the run."""
    out: Path
    sizes: dict[str, int]  # the model's files (the web page's weights) -> bytes
    figures: Figures


def check_choice(fmt: str, quantize: str | None) -> None:
    """Refuse an unknown format, or a quantization the format lacks, before anything is read."""
    if fmt not in QUANTIZE:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZE[fmt]:
        offered = [f for f, kinds in QUANTIZE.items() if quantize in kinds]
        why = "a SavedModel keeps the run's float32 weights" if fmt == "savedmodel" else f"{fmt} offers " + \
            " and ".join(QUANTIZE[fmt])
        raise ExportError(f"--quantize {quantize} is not offered for --format {fmt} ({why}); quantize with "
                          f"--format {' or '.join(offered)}, or leave --quantize out")
    for module in _NEEDS.get(fmt, ()):
        need(module, fmt)


def export(run_dir, fmt: str, out: Path | None = None, quantize: str | None = None) -> Exported:
    """Write the run at run_dir in format fmt to out (default: beside the run, see folder.default_out)."""
    check_choice(fmt, quantize)
    run = load_run(run_dir)
    # read before anything is converted, so that a damaged metrics.json or config.yaml is named at once
    origin = {"metrics": run.metrics(), "base": (saved_origin(run.run_dir) or {}).get("init_from")}
    out = Path(out) if out is not None else folders.default_out(run.run_dir, fmt, quantize)
    folders.check_out(out, run.run_dir)
    with folders.staging(out) as tmp:
        runner, signatures = _write_model(run, fmt, tmp, quantize)
        figures = check(run, runner, quantize)
        shutil.copyfile(run.run_dir / TOKENIZER, tmp / TOKENIZER)
        sizes = {name: _size(tmp / name) for name in _model_files(fmt, tmp)}
        manifest = _manifest(run, origin, fmt, quantize, signatures, figures)
        (tmp / folders.README).write_text(readme(manifest, sizes), encoding="utf-8")
        folders.write_manifest(tmp, manifest)
        folders.commit(tmp, out)
    return Exported(out, sizes, figures)


def _write_model(run: Run, fmt: str, tmp: Path, quantize: str | None) -> tuple[Runner, dict]:
    """The format's files in tmp, opened again with its runtime; and the signatures' tensors for the manifest."""
    if fmt == "web":
        from lstm_textgen.export.web import web_files, web_stepper

        files = web_files(run, quantize)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        stepper = web_stepper(json.loads(files["model.json"]), files["weights.bin"])  # the bytes the page reads
        return stepper_runner(stepper, run.config.model.objective == "sequence"), WEB_API
    from lstm_textgen.export import formats
    from lstm_textgen.export.graph import float32_model, signatures

    model = float32_model(run.model)
    shape = (1, run.config.data.window_size) if fmt == "tflite" else (None, None)
    sigs = signatures(model, shape, int8_embedding=fmt == "tflite" and quantize == "int8")
    if fmt == "onnx":
        formats.write_onnx(sigs, tmp, quantize)
        return formats.open_onnx(tmp), sigs.tensors()
    formats.write_savedmodel(sigs, tmp)
    if fmt == "savedmodel":
        return formats.open_savedmodel(tmp), sigs.tensors()
    formats.write_tflite(tmp, quantize)
    shutil.rmtree(tmp / "saved_model")  # the converter's input, not part of a TFLite export
    return formats.open_tflite(tmp), sigs.tensors()


# The web page's API, in the manifest where the model formats list their signatures
WEB_API = {"lstmTextgen.ready": "a Promise that resolves once the weights are loaded",
           "lstmTextgen.generate(seed, n, {greedy, temperature, top_k, top_p})": "the continuation of seed, as "
           "`lstm-textgen generate` prints it after the seed",
           "lstmTextgen.suggest(text, k)": "the k likeliest next words after text, with their probabilities"}


def _model_files(fmt: str, tmp: Path) -> list[str]:
    return FILES.get(fmt) or ["weights.bin", "model.json", "data.js", "lstm-textgen.js", "index.html"]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _manifest(run: Run, origin: dict, fmt: str, quantize: str | None, signatures: dict, figures: Figures) -> dict:
    tokenizer, metrics = run.tokenizer, origin["metrics"]
    return {
        "format": fmt, "quantize": quantize,
        "signatures": signatures,
        "level": tokenizer.level, "lowercase": tokenizer.lowercase, "vocab_size": tokenizer.vocab_size,
        "objective": run.config.model.objective, "window_size": run.config.data.window_size,
        "run": {"path": str(run.run_dir.resolve()), "model_sha256": _sha256(run.run_dir / MODEL),
                "best_epoch": metrics.get("best_epoch"), "best_val_perplexity": metrics.get("best_val_perplexity"),
                "fine_tuned_from": origin["base"]},
        "lstm_textgen_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "check": figures.to_dict(),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
