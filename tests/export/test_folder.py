"""Where an export may go, and how it is put in place: whole or not at all, and never over a person's files."""
from __future__ import annotations

import json
import os

import pytest

from lstm_textgen.atomic import PREFIX
from lstm_textgen.errors import ExportError
from lstm_textgen.export.folder import (MANIFEST, check_out, commit, default_out, read_manifest, staging,
                                        write_manifest)


def test_the_default_is_beside_the_run(tmp_path):
    assert default_out(tmp_path / "runs" / "demo", "onnx", None) == tmp_path / "runs" / "demo-onnx"
    assert default_out(tmp_path / "runs" / "demo", "tflite", "int8") == tmp_path / "runs" / "demo-tflite-int8"


@pytest.mark.parametrize("where, fragment", [
    ("run", "is the run itself"), ("run/inside", "is inside the run"), (".", "a folder that holds the run"),
    ("file.txt", "is a file, not a folder"), ("file.txt/out", "file.txt is a file, not a folder"),
    ("mine", "is a folder that is not an lstm-textgen export")])
def test_a_target_that_would_lose_something_is_refused(where, fragment, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "file.txt").write_text("keep")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ExportError, match=fragment):
        check_out(tmp_path / where, tmp_path / "run")
    assert (tmp_path / "file.txt").read_text() == "keep" and (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_absent_empty_and_earlier_exports_are_accepted(tmp_path):
    (tmp_path / "run").mkdir()
    check_out(tmp_path / "new", tmp_path / "run")
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty", tmp_path / "run")
    (tmp_path / "old").mkdir()
    write_manifest(tmp_path / "old", {"format": "onnx"})
    check_out(tmp_path / "old", tmp_path / "run")
    (tmp_path / "old" / MANIFEST).write_text("{ damaged")
    with pytest.raises(ExportError, match="not an lstm-textgen export"):
        check_out(tmp_path / "old", tmp_path / "run")


def _export(folder, files: dict) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    write_manifest(folder, {"format": "test"})


def test_a_new_export_replaces_exactly_the_files_of_the_old_one(tmp_path):
    out = tmp_path / "out"
    with staging(out) as tmp:
        _export(tmp, {"saved_model/saved_model.pb": "old", "saved_model/variables/v.index": "old", "README.md": "1"})
        commit(tmp, out)
    assert read_manifest(out)["files"] == ["README.md", MANIFEST, "saved_model/saved_model.pb",
                                           "saved_model/variables/v.index"]
    (out / "my-notes.txt").write_text("mine")
    (out / "saved_model" / "mine.txt").write_text("mine")
    with staging(out) as tmp:
        _export(tmp, {"model.tflite": "new", "README.md": "2"})
        commit(tmp, out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "README.md", MANIFEST, "model.tflite", "my-notes.txt", "saved_model/mine.txt"]
    assert (out / "README.md").read_text() == "2" and not (out / "saved_model" / "variables").exists()
    assert json.loads((out / MANIFEST).read_text())["generator"].startswith("lstm-textgen ")
    assert not list(tmp_path.glob(PREFIX + "*"))


def test_a_failure_leaves_nothing_and_a_killed_exports_leftover_is_swept(tmp_path):
    out = tmp_path / "out"
    leftover = tmp_path / f"{PREFIX}out.abcd1234"
    leftover.mkdir()
    (leftover / "step.onnx").write_text("half")
    other = tmp_path / f"{PREFIX}other.abcd1234"
    other.mkdir()
    with pytest.raises(RuntimeError):
        with staging(out) as tmp:
            assert not leftover.exists() and other.exists()
            (tmp / "model.tflite").write_text("half")
            raise RuntimeError("the check failed")
    assert not out.exists() and sorted(os.listdir(tmp_path)) == [other.name]
