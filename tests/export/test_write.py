"""export() end to end on real runs: every format's folder, its manifest, replacing an earlier export, and the
refusals that leave everything as it was."""
from __future__ import annotations

import json
import shutil

import pytest

from helpers import snapshot
from lstm_textgen.errors import CheckpointError, ExportError
from lstm_textgen.export import write
from lstm_textgen.export.folder import read_manifest
from lstm_textgen.export.write import check_choice, export


@pytest.mark.parametrize("fmt, model_files", [("savedmodel", ["saved_model/saved_model.pb"]),
                                              ("tflite", ["model.tflite"]), ("onnx", ["step.onnx", "window.onnx"])])
def test_each_format_is_a_checked_folder_with_its_manifest(fmt, model_files, exports, tiny_run):
    done = exports[fmt]
    manifest = read_manifest(done.out)
    assert manifest["format"] == fmt and manifest["quantize"] is None and manifest["level"] == "word"
    assert manifest["vocab_size"] == len(json.loads((tiny_run / "tokenizer.json").read_text())["vocab"])
    assert set(model_files) <= set(manifest["files"]) and {"tokenizer.json", "README.md", "manifest.json"} <= set(
        manifest["files"])
    assert sorted(manifest["files"]) == sorted(p.relative_to(done.out).as_posix() for p in done.out.rglob("*")
                                               if p.is_file())
    assert (done.out / "tokenizer.json").read_bytes() == (tiny_run / "tokenizer.json").read_bytes()
    assert manifest["run"]["path"] == str(tiny_run.resolve()) and len(manifest["run"]["model_sha256"]) == 64
    step = manifest["signatures"]["step"]
    assert [t["name"] for t in step["inputs"]] == ["token", "h0", "c0"]
    assert [t["name"] for t in step["outputs"]] == ["probabilities", "h0_next", "c0_next"]
    assert manifest["check"]["step_max_diff"] <= 1e-4 and manifest["check"]["window_max_diff"] <= 1e-4
    assert done.figures.top1 == 1.0
    # TFLite is converted from a SavedModel written beside it, which is not part of the export
    assert any(name.startswith("saved_model/") for name in manifest["files"]) == (fmt == "savedmodel")


def test_a_second_export_replaces_the_first_and_keeps_a_persons_file(tiny_run, tmp_path):
    out = tmp_path / "out"
    export(tiny_run, "onnx", out)
    (out / "notes.txt").write_text("mine")
    export(tiny_run, "web", out, "float16")
    names = sorted(p.name for p in out.iterdir())
    assert "step.onnx" not in names and "weights.bin" in names and "notes.txt" in names
    assert read_manifest(out)["format"] == "web" and read_manifest(out)["quantize"] == "float16"


def test_a_failed_check_leaves_the_earlier_export_as_it_was(tiny_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    export(tiny_run, "web", out)
    before = snapshot(tmp_path)

    def failing(*args):
        raise ExportError("the export does not match the run: ...")

    monkeypatch.setattr(write, "check", failing)
    with pytest.raises(ExportError):
        export(tiny_run, "onnx", out)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("fmt, quantize, fragment", [
    ("pdf", None, "unknown export format 'pdf'; choose one of savedmodel, tflite, onnx, web"),
    ("savedmodel", "int8", "--quantize int8 is not offered for --format savedmodel (a SavedModel keeps"),
    ("onnx", "int4", "--quantize int4 is not offered for --format onnx (onnx offers float16 and int8)")])
def test_a_wrong_choice_is_refused_before_the_run_is_read(fmt, quantize, fragment):
    with pytest.raises(ExportError) as caught:
        check_choice(fmt, quantize)
    assert fragment in str(caught.value)


def test_an_unfinished_run_is_refused(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "model.keras").unlink()
    with pytest.raises(CheckpointError, match="model.keras is missing"):
        export(run, "web", tmp_path / "out")
    assert not (tmp_path / "out").exists()
