"""The benchmarks' result lines: benchmarks.results appends and reads them back, and renders them as markdown
without TensorFlow."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from conftest import REPO


@pytest.fixture
def suite(monkeypatch):
    """The benchmarks package, imported from the repository root (pytest's importlib mode does not put it there)."""
    monkeypatch.syspath_prepend(str(REPO))
    import benchmarks.catalog
    import benchmarks.results

    return benchmarks


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


@pytest.mark.parametrize("folder", ["empty", "absent"])
def test_markdown_tables_without_results_say_how_to_record_them(suite, tmp_path, folder):
    (tmp_path / "empty").mkdir()
    text = suite.results.markdown_tables(tmp_path / folder)
    assert text.startswith("No benchmark results are recorded yet") and "python -m benchmarks NAME" in text
