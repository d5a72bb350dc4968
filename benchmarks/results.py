"""The recorded results: one JSON line a run in benchmarks/results/NAME.jsonl, read back and rendered as
markdown tables (the docs' performance page calls markdown_tables). Imports nothing heavy.

A record: {"benchmark", "date" (ISO, UTC), "commit" (short sha, "+dirty" for uncommitted changes),
"seconds", "machine" {"platform", "cpu", "cores", "memory_bytes", "load_average"}, "arguments",
"corpus" [{"argument", "file", "bytes", "sha256"}], "figures" [{"name", "value", "unit", "main"?}],
"baseline" (a figure, or null)}.
"""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks.catalog import BENCHMARKS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHOWN_RUNS = 10  # the newest runs a table shows


def figure(name: str, value, unit: str, main: bool = False) -> dict:
    """One measured figure; the main ones are the columns of the benchmark's markdown table."""
    return {"name": name, "value": value, "unit": unit, **({"main": True} if main else {})}


def append(results_dir: Path, record: dict) -> Path:
    """Add record as one line to results_dir/NAME.jsonl; returns the file's path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{record['benchmark']}.jsonl"
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def read(path: Path) -> list[dict]:
    """The records of one NAME.jsonl, oldest first."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def markdown_tables(results_dir: Path) -> str:
    """A "## NAME" section for each NAME.jsonl in results_dir: what it measures, and a table of its newest runs."""
    files = sorted(results_dir.glob("*.jsonl")) if results_dir.is_dir() else []
    sections = [section(path.stem, read(path)) for path in files]
    sections = [s for s in sections if s]
    if not sections:
        return ("No benchmark results are recorded yet: run `python -m benchmarks NAME` from the repository root "
                "on a quiet machine; each run appends a line to benchmarks/results/NAME.jsonl.\n")
    return "\n".join(sections)


def section(name: str, records: list[dict]) -> str:
    """The markdown section of one benchmark: its heading, what it measures, its newest runs first."""
    if not records:
        return ""
    known = BENCHMARKS.get(name)
    about = (f"Measures {known.measures}; baseline: {known.baseline}. Run it with `python -m benchmarks {name}`."
             if known else f"Recorded by `python -m benchmarks {name}`.")
    shown = records[::-1][:SHOWN_RUNS]
    columns = []  # the main figures' names, in the order the runs give them
    for record in shown:
        columns += [f["name"] for f in record["figures"] if f.get("main") and f["name"] not in columns]
    units = {f["name"]: f["unit"] for record in shown for f in record["figures"]}
    header = ["date", "commit", "machine", *(heading(c, units[c]) for c in columns), "baseline"]
    lines = [f"## {name}", "", escape(about), "", row(header), row(["---"] * len(header))]
    for record in shown:
        values = {f["name"]: f["value"] for f in record["figures"]}
        machine = record.get("machine", {})
        baseline = record.get("baseline")
        lines.append(row([record["date"][:16].replace("T", " "), record.get("commit", ""),
                          f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores",
                          *(number(values[c]) if c in values else "" for c in columns),
                          f"{baseline['name']}: {number(baseline['value'])} {baseline['unit']}" if baseline else "-"]))
    if len(records) > SHOWN_RUNS:
        lines += ["", f"The newest {SHOWN_RUNS} of {len(records)} recorded runs."]
    return "\n".join(lines) + "\n"


def heading(name: str, unit: str) -> str:
    """A column's heading: the figure's name, with its unit unless the name ends with it."""
    return f"{name} ({unit})" if unit and not name.endswith(unit) else name


def number(value) -> str:
    """A figure as a table shows it: thousands separated, about four significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def row(cells: list[str]) -> str:
    return "| " + " | ".join(escape(str(c)) for c in cells) + " |"


def escape(text: str) -> str:
    """Text as markdown shows it literally in a table: `<unk>` is not an HTML tag, `|` not a column."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
