"""Reading runs back: `info` on one, `runs` over a folder (a damaged run listed beside the others); neither
loads TensorFlow."""
import json
import shutil
import subprocess
import sys

import pytest

from lstm_textgen.errors import TextgenError
from lstm_textgen.run.report import list_runs, run_info

from helpers import assert_one_line_error, invoke


def test_info_json_counts_parameters_without_keras(tiny_run):
    summary = json.loads(invoke("info", "--run", tiny_run, "--json", catch_exceptions=False).output)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert summary["parameters"] == metrics["parameters"]  # Keras' count_params() at training time
    assert [layer["class_name"] for layer in summary["layers"]] == ["Embedding", "Masking", "LSTM", "Dense",
                                                                   "Dropout", "Dense"]
    assert summary["epochs"] == 2 and summary["best_val_perplexity"] == metrics["best_val_perplexity"]
    files = {entry["name"]: entry for entry in summary["files"]}
    assert files["model.keras"]["bytes"] == (tiny_run / "model.keras").stat().st_size
    assert files["checkpoints/"]["files"] == len(list((tiny_run / "checkpoints").iterdir()))


def test_info_and_runs_do_not_load_tensorflow(tiny_run):
    code = ("import sys; from lstm_textgen.run.report import run_info, list_runs; "
            "from lstm_textgen.run.show import format_info; "
            f"format_info(run_info({str(tiny_run)!r})); list_runs({str(tiny_run.parent)!r}); "
            "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_info_errors(tiny_run, tmp_path):
    assert_one_line_error(invoke("info", "--run", tmp_path / "nope"), "does not exist")
    assert_one_line_error(invoke("info", "--run", tmp_path), "is not an lstm-textgen run directory")
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "model.keras").write_bytes(b"not a zip")
    assert_one_line_error(invoke("info", "--run", run), "model.keras is corrupt")


def test_runs_lists_every_run_under_a_folder(two_runs, tmp_path):
    result = invoke("runs", tmp_path / "runs", catch_exceptions=False)
    assert result.exit_code == 0
    header, first, second = result.output.splitlines()
    assert header.split() == ["name", "corpus", "epochs", "best", "val", "ppl", "bits/char", "size", "last",
                              "modified", "status"]
    metrics = json.loads((two_runs[0] / "metrics.json").read_text())
    assert first.split()[:5] == ["a", metrics["corpus"], "2", f"{metrics['best_val_perplexity']:,.2f}",
                                 f"{metrics['best_val_bits_per_char']:.3f}"]
    assert first.split()[-1] == second.split()[-1] == "ok"
    assert second.split()[:3] == ["group/b", metrics["corpus"], "3"]
    rows = list_runs(tmp_path / "runs")
    assert [row["name"] for row in rows] == ["a", "group/b"]
    assert rows[0]["bytes"] == sum(p.stat().st_size for p in two_runs[0].rglob("*") if p.is_file())


def test_runs_defaults_to_runs_and_says_when_there_are_none(tmp_path):
    (tmp_path / "runs").mkdir()  # the tests run in tmp_path
    result = invoke("runs", catch_exceptions=False)
    assert result.exit_code == 0 and result.output.startswith("No runs under runs")


def test_runs_errors(tmp_path):
    assert_one_line_error(invoke("runs", tmp_path / "missing"), "folder", "missing does not exist")
    (tmp_path / "file").write_text("x")
    assert_one_line_error(invoke("runs", tmp_path / "file"), "is a file")
    with pytest.raises(TextgenError):
        list_runs(tmp_path / "missing")


def test_run_info_on_a_run_before_its_first_epoch(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for name in ("model.keras", "history.csv", "metrics.json"):
        (run / name).unlink()
    shutil.rmtree(run / "checkpoints")  # no epoch has ended, so none was saved
    info = run_info(run)
    assert info["layers"] is None and info["epochs"] == 0 and info["damaged"] == []
    assert "no model.keras yet" in invoke("info", "--run", run, catch_exceptions=False).output
