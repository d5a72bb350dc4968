"""The benchmark suite: `python -m benchmarks` lists, refuses in one line, and records one JSON line a run;
benchmarks.results reads the lines back and renders them as markdown without TensorFlow."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from conftest import REPO
from helpers import corpus_text

NEED_CORPUS = ["train", "corpus", "quality", "levels", "finetune", "epoch1"]


def benchmarks(*args, env=None) -> subprocess.CompletedProcess:
    """`python -m benchmarks ARGS` from the repository root, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "benchmarks", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.fixture
def suite(monkeypatch):
    """The benchmarks package, imported from the repository root (pytest's importlib mode does not put it there)."""
    monkeypatch.syspath_prepend(str(REPO))
    import benchmarks.catalog
    import benchmarks.results

    return benchmarks


@pytest.fixture
def no_tensorflow(tmp_path):
    """An environment in which importing TensorFlow fails loudly: a stand-in package first on the path."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise SystemExit('TensorFlow was imported')\n")
    return {**os.environ, "PYTHONPATH": str(fake.parent)}


def one_error_line(result) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    return lines[0]


@pytest.mark.parametrize("args", [[], ["--help"]])
def test_listing_names_every_benchmark_with_what_it_measures_and_how_long(suite, args):
    result = benchmarks(*args)
    assert result.returncode == 0, result.stderr
    for name, benchmark in suite.catalog.BENCHMARKS.items():
        line = next(line for line in result.stdout.splitlines() if line.split()[:1] == [name])
        assert f"~{benchmark.duration}" in line and benchmark.measures.split()[0] in line
    assert "python -m benchmarks NAME" in result.stdout


def test_an_unknown_name_is_one_error_line_naming_the_choices(suite):
    error = one_error_line(benchmarks("trian"))
    assert "'trian'" in error
    assert all(name in error for name in suite.catalog.BENCHMARKS)


@pytest.mark.parametrize("name", NEED_CORPUS)
def test_a_missing_corpus_is_one_error_line_before_tensorflow(name, no_tensorflow):
    error = one_error_line(benchmarks(name, "--no-record", env=no_tensorflow))
    assert error.startswith(f"Error: {name} needs --corpus FILE")


def test_finetune_names_the_target_it_lacks(tiny_corpus, no_tensorflow):
    error = one_error_line(benchmarks("finetune", "--corpus", tiny_corpus, env=no_tensorflow))
    assert error.startswith("Error: finetune needs --target FILE (") and "--corpus" not in error


def test_a_corpus_that_is_not_there_is_one_error_line(tmp_path, no_tensorflow):
    error = one_error_line(benchmarks("levels", "--corpus", tmp_path / "absent.txt", env=no_tensorflow))
    assert error == f"Error: --corpus {tmp_path / 'absent.txt'}: no such file"


def test_an_unknown_option_is_one_error_line():
    assert "--bogus" in one_error_line(benchmarks("floor", "--bogus"))


def test_results_module_imports_nothing_heavy():
    code = ("import sys; import benchmarks.results; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'tensorflow', 'keras', 'lstm_textgen'}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def record(name: str, day: int, value: float, **extra) -> dict:
    """A hand-made result line."""
    return {"benchmark": name, "date": (datetime(2026, 1, 1) + timedelta(days=day)).isoformat() + "+00:00",
            "commit": f"abc{day:04d}", "machine": {"cpu": "Test CPU", "cores": 2},
            "figures": [{"name": "speed", "value": value, "unit": "tokens/s", "main": True},
                        {"name": "hidden detail", "value": 1.0, "unit": "s"}],
            "baseline": {"name": "old way", "value": 10.0, "unit": "tokens/s"}, **extra}


def test_results_append_and_read_back_in_order(suite, tmp_path):
    first, second = record("generate", 1, 100.0), record("generate", 2, 200.0, corpus=[{"file": "é.txt"}])
    path = suite.results.append(tmp_path / "results", first)
    assert suite.results.append(tmp_path / "results", second) == path == tmp_path / "results" / "generate.jsonl"
    assert suite.results.read(path) == [first, second]
    assert [json.loads(line)["commit"] for line in path.read_text(encoding="utf-8").splitlines()] == \
        ["abc0001", "abc0002"]


def test_markdown_tables_show_the_newest_runs_first_with_their_main_figures(suite, tmp_path):
    for day in range(12):
        suite.results.append(tmp_path, record("generate", day, 1000.0 + day))
    suite.results.append(tmp_path, record("retired", 0, 5.0, baseline=None))
    text = suite.results.markdown_tables(tmp_path)

    generate = text[text.index("## generate"):text.index("## retired")]
    assert suite.catalog.BENCHMARKS["generate"].measures in generate
    assert "| date | commit | machine | speed (tokens/s) | baseline |" in generate
    assert "hidden detail" not in generate
    rows = [line for line in generate.splitlines() if line.startswith("| 2026")]
    assert len(rows) == suite.results.SHOWN_RUNS
    assert rows[0] == "| 2026-01-12 00:00 | abc0011 | Test CPU, 2 cores | 1,011 | old way: 10.00 tokens/s |"
    assert rows[-1].startswith("| 2026-01-03 00:00 | abc0002 |")
    assert "The newest 10 of 12 recorded runs." in generate
    assert "| 2026-01-01 00:00 | abc0000 | Test CPU, 2 cores | 5.00 | - |" in text[text.index("## retired"):]


def test_markdown_tables_show_tags_and_bars_in_names_literally(suite, tmp_path):
    line = record("levels", 0, 1.5)
    line["figures"][0]["name"] = "word, <unk> | spelled"
    suite.results.append(tmp_path, line)
    text = suite.results.markdown_tables(tmp_path)
    assert "| word, &lt;unk&gt; \\| spelled (tokens/s) |" in text and "<unk>" not in text


@pytest.mark.parametrize("folder", ["empty", "absent"])
def test_markdown_tables_without_results_say_how_to_record_them(suite, tmp_path, folder):
    (tmp_path / "empty").mkdir()
    text = suite.results.markdown_tables(tmp_path / folder)
    assert text.startswith("No benchmark results are recorded yet") and "python -m benchmarks NAME" in text


def test_a_real_run_appends_one_line_with_the_machine_commit_corpus_and_figures(suite, tmp_path, tiny_corpus):
    results_dir = tmp_path / "results"
    done = benchmarks("corpus", "--corpus", tiny_corpus, "--mb", "1", "--skip-train", "--results-dir", results_dir)
    assert done.returncode == 0, done.stderr
    assert "ours / naive tokenizing time:" in done.stdout
    [line] = suite.results.read(results_dir / "corpus.jsonl")

    assert datetime.fromisoformat(line["date"]).utcoffset() == timedelta(0)
    assert re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?", line["commit"])
    assert line["machine"]["cores"] == os.cpu_count() and len(line["machine"]["load_average"]) == 3
    assert line["arguments"]["mb"] == 1 and line["arguments"]["corpus"] == [str(tiny_corpus)]
    data = tiny_corpus.read_bytes()
    assert line["corpus"] == [{"argument": "--corpus", "file": "corpus.txt", "bytes": len(data),
                               "sha256": hashlib.sha256(data).hexdigest()[:16]}]
    figures = {f["name"]: f for f in line["figures"]}
    assert figures["ours tokenize"]["unit"] == "s" and figures["ours tokenize"]["value"] > 0
    assert figures["ours / naive tokenizing time"]["value"] == pytest.approx(
        figures["ours tokenize"]["value"] / line["baseline"]["value"])
    assert line["baseline"]["name"] == "naive tokenize"
    assert "## corpus" in suite.results.markdown_tables(results_dir)


def test_no_record_leaves_the_results_folder_alone(suite, tmp_path):
    shipped = suite.results.RESULTS_DIR / "embeddings.jsonl"
    before = shipped.read_bytes() if shipped.exists() else None
    done = benchmarks("embeddings", "--words", "2000", "--dim", "4", "--vocab", "50", "--no-record")
    assert done.returncode == 0, done.stderr
    assert "matrices identical: True" in done.stdout and "recorded in" not in done.stdout
    assert (shipped.read_bytes() if shipped.exists() else None) == before


@pytest.mark.slow
def test_export_measures_every_format_beside_the_numpy_stepper(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    done = subprocess.run([sys.executable, "-m", "benchmarks", "export", "--run", str(run), "--tokens", "20",
                           "--results-dir", str(tmp_path / "results")], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split("  ")[0].strip(): line for line in done.stdout.splitlines()}
    for name in ("savedmodel", "tflite", "tflite int8", "onnx", "onnx float16", "web", "web int8", "numpy stepper"):
        assert name in rows, done.stdout
    assert "target: int8 at most 30% of float32" in done.stdout
    [record] = [json.loads(line) for line in (tmp_path / "results" / "export.jsonl").read_text().splitlines()]
    figures = {f["name"]: f for f in record["figures"]}
    assert figures["tflite: tokens/s"]["value"] > 0 and record["baseline"]["name"] == "numpy stepper"
    for name in ("tflite int8", "onnx int8", "web int8"):  # a tiny model's near-ties may fail the int8 check
        assert (f"{name}: share of float32" in figures) != ("refused: " in rows[name]), rows[name]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (not a dependency): "
                    "the char-rnn recipe cannot run")
def test_charrnn_compares_char_yaml_with_the_recipe_on_the_same_characters(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_text(sentences=400), encoding="utf-8")
    done = benchmarks("charrnn", "--corpus", corpus, "--minutes", "0.05", "--out", tmp_path / "runs",
                      "--results-dir", tmp_path / "results")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "char.yaml vs char-rnn:" in done.stdout and "[charrnn] epoch 1:" in done.stdout
    [record] = [json.loads(line) for line in (tmp_path / "results" / "charrnn.jsonl").read_text().splitlines()]
    figures = {f["name"]: f["value"] for f in record["figures"]}
    ratio = figures["char.yaml / char-rnn, bits per character"]
    assert ratio == pytest.approx(figures["configs/char.yaml: bits per character"]
                                  / figures["char-rnn (PyTorch): bits per character"])
    assert json.loads((tmp_path / "runs" / "results.json").read_text())["charrnn"]["val_chars"] > 0


def test_quality_with_seeds_reports_their_mean_each_seed_and_the_spread(suite, tmp_path, capsys):
    import argparse

    import benchmarks.quality as quality

    row = {"val_ppl_training": 100.0, "epochs": 3, "tokens_seen": 1000, "parameters": 10, "wall_minutes": 5.0}
    results = {"quality": {**row, "val_ppl_per_token": 100.0, "seeds": {"42": 96.0, "43": 104.0, "44": 100.0}},
               "pytorch word LM": {**row, "val_ppl_per_token": 125.0}}
    figures, _ = quality.report(results, argparse.Namespace(minutes=5.0, corpus=tmp_path / "c.txt"))
    said = capsys.readouterr().out
    assert "per token by seed: 42: 96.00, 43: 104.00, 44: 100.00; mean 100.00, spread 8.00" in said
    values = {f["name"]: f["value"] for f in figures}
    assert values["quality: seed spread (max - min)"] == 8.0 and values["quality: val ppl (per token), seed 43"] == 104
    assert values["quality / PyTorch word LM, per token"] == pytest.approx(0.8)
