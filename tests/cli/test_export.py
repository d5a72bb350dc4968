"""lstm-textgen export through the real CLI: what it prints, and each mistake as one Error: line with nothing
replaced."""
from __future__ import annotations

import shutil
import sys

import pytest

from helpers import assert_one_line_error, invoke, snapshot


def test_export_prints_the_check_and_writes_beside_the_run(tiny_run, tmp_path):
    run = tmp_path / "runs" / "demo"
    shutil.copytree(tiny_run, run)
    result = invoke("export", "--run", run, "--format", "tflite")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("checked on ") and "held-out tokens" in lines[0] and "top-1 agrees on 100.0%" in lines[0]
    assert lines[1].startswith("  model.tflite: ") and lines[-1] == f"Wrote {run.parent / 'demo-tflite'} (see its README.md)"
    assert (run.parent / "demo-tflite" / "model.tflite").is_file()


def test_web_int8_is_written_where_asked(tiny_run, tmp_path):
    result = invoke("export", "--run", tiny_run, "--format", "web", "--quantize", "int8", "-o", tmp_path / "page")
    assert result.exit_code == 0, result.output
    assert {"index.html", "weights.bin", "data.js", "lstm-textgen.js", "model.json", "tokenizer.json", "README.md",
            "manifest.json"} == {p.name for p in (tmp_path / "page").iterdir()}


@pytest.mark.parametrize("args, fragment", [
    (["--format", "pdf"], "unknown export format 'pdf'"),
    (["--format", "savedmodel", "--quantize", "int8"], "--quantize int8 is not offered for --format savedmodel"),
    (["--format", "web", "--quantize", "int4"], "--quantize int4 is not offered for --format web"),
])
def test_a_wrong_choice_is_one_line(args, fragment, tiny_run, tmp_path):
    before = snapshot(tmp_path)
    assert_one_line_error(invoke("export", "--run", tiny_run, *args, "-o", tmp_path / "out"), fragment)
    assert snapshot(tmp_path) == before


def test_a_folder_that_is_not_a_run_or_not_trained_is_one_line(tiny_run, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    assert_one_line_error(invoke("export", "--run", tmp_path / "notes", "--format", "web"),
                          "is not an lstm-textgen run directory")
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "model.keras").write_bytes(b"not a zip")
    assert_one_line_error(invoke("export", "--run", run, "--format", "onnx", "-o", tmp_path / "o1"),
                          "model.keras is corrupt or unreadable")
    (run / "model.keras").unlink()
    assert_one_line_error(invoke("export", "--run", run, "--format", "web", "-o", tmp_path / "o2"),
                          "model.keras is missing")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_an_existing_folder_of_a_persons_is_never_replaced(tiny_run, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "index.html").write_text("my page")
    before = snapshot(tmp_path)
    assert_one_line_error(invoke("export", "--run", tiny_run, "--format", "web", "-o", tmp_path / "mine"),
                          "is a folder that is not an lstm-textgen export", "choose another -o")
    (tmp_path / "file").write_text("mine")
    assert_one_line_error(invoke("export", "--run", tiny_run, "--format", "web", "-o", tmp_path / "file"),
                          "is a file, not a folder")
    assert snapshot(tmp_path) == {**before, "file": snapshot(tmp_path)["file"]}


def test_a_missing_runtime_says_how_to_install_it(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if the export extra were not installed
    assert_one_line_error(invoke("export", "--run", tiny_run, "--format", "onnx", "-o", tmp_path / "out"),
                          "--format onnx needs tf2onnx, part of the export extra; install it with: pip install "
                          "'lstm-textgen[export]'")
    assert not (tmp_path / "out").exists()


def test_a_bidirectional_run_is_one_line(bidirectional_run, tmp_path):
    run = bidirectional_run
    for fmt in ("onnx", "web"):
        assert_one_line_error(invoke("export", "--run", run, "--format", fmt, "-o", tmp_path / fmt), "bidirectional")
        assert not (tmp_path / fmt).exists()
