"""What the benchmarks share: their corpus and --set arguments, child processes that report one JSON line,
timing and memory readings, the reference-sized run, and the description of the machine, commit and corpus
that goes into each result line. Only the standard library is imported at the top.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CORPUS = ROOT / "data" / "tinyshakespeare.txt"
VOCAB, SEED = 10_000, "w10 w20 w30 w40"  # the reference-sized run's vocabulary and the seed text it is given


def add_corpus(parser, kind: str, flag: str = "--corpus", default: Path | None = None, several: bool = False,
               optional: bool = False) -> None:
    """A corpus argument (`kind`: what kind of text it should be). Unless it has a default or is optional, it is
    required: `python -m benchmarks` says so in one line before anything heavy is imported."""
    dest = flag.removeprefix("--").replace("-", "_")
    shown = "FILE [FILE ...]" if several else "FILE"
    parser.add_argument(flag, dest=dest, type=Path, nargs="+" if several else None, default=default,
                        metavar="FILE", help=f"{kind}{f' (default: {default.relative_to(ROOT)})' if default else ''}")
    if not hasattr(parser, "corpora"):
        parser.corpora = {}
    parser.corpora[dest] = (f"{flag} {shown}", kind, default is None and not optional)


def add_settings(parser, help: str) -> None:
    """--set KEY=VALUE (repeatable) into args.settings: config settings passed on to the benchmark's runs."""
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE", help=help)


def cli_command() -> list[str]:
    """The lstm-textgen command of this environment."""
    script = Path(sys.executable).with_name("lstm-textgen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lstm_textgen"]


def run_child(*args: str, show_stderr: bool = False) -> dict:
    """Run `python ARGS` in a fresh process from the repository root; returns the JSON of the last line it
    prints. Its stderr is shown only when it fails, unless show_stderr."""
    out = subprocess.run([sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                         stderr=None if show_stderr else subprocess.PIPE,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode != 0:
        raise SystemExit(f"a measurement failed:\n{(out.stderr or '')[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_wall(command: list[str], repeats: int) -> float:
    """Median seconds from process start to exit (for `-n 1`, an upper bound on the first token)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return statistics.median(times)


def memory_kib() -> dict:
    """This process's resident set in KiB: now (rss), its peak (VmHWM) and the file-backed part (RssFile, None
    without /proc), from /proc/self/status, or ru_maxrss elsewhere."""
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        return {"rss": int(fields["VmRSS"].split()[0]), "peak": int(fields["VmHWM"].split()[0]),
                "file": int(fields["RssFile"].split()[0])}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux
    return {"rss": peak, "peak": peak, "file": None}


def make_reference_run(run_dir: Path, units: int | None = None, layers: int | None = None) -> None:
    """config.yaml, tokenizer.json and an untrained model.keras of the reference size (`layers` LSTMs `units` wide
    instead, when given), with the metrics.json and history.csv of one finished epoch (serve, like every command,
    refuses a run that has a model without them)."""
    import math

    from lstm_textgen import __version__
    from lstm_textgen.config import load_config
    from lstm_textgen.model.stack import build_model
    from lstm_textgen.run.files import (CONFIG, HISTORY, METRICS, MODEL, TOKENIZER, prepare_run_dir, save_json,
                                        save_model)
    from lstm_textgen.run.stamp import save_config
    from lstm_textgen.text.tokenizer import PAD, UNK
    from lstm_textgen.text.words import WordTokenizer
    from lstm_textgen.training.callbacks import HISTORY_COLUMNS

    config = load_config(ROOT / "configs" / "reference.yaml", [f"train.run_dir={run_dir}"])
    assert (config.model.rnn, config.model.units, config.model.dense_units, config.embedding.dim,
            config.model.objective) == ("lstm", 64, 64, 100, "last"), "configs/reference.yaml changed"
    if units is not None or layers is not None:
        config = load_config(ROOT / "configs" / "reference.yaml", [f"train.run_dir={run_dir}",
                                                                   f"model.units={units or 64}",
                                                                   f"model.layers={layers or 1}"])
    prepare_run_dir(run_dir, new=True)
    save_config(run_dir / CONFIG, config)
    vocab = [PAD, UNK] + [f"w{i}" for i in range(2, VOCAB)]
    WordTokenizer("word", True, vocab, [0, 0] + [1] * (VOCAB - 2)).save(run_dir / TOKENIZER, __version__)
    model = build_model(config.model, VOCAB, config.embedding.dim)
    save_model(model, run_dir / MODEL)
    untrained = {"epoch": 1, "loss": math.log(VOCAB), "val_loss": math.log(VOCAB), "val_perplexity": float(VOCAB)}
    (run_dir / HISTORY).write_text(",".join(HISTORY_COLUMNS) + "\n"
                                   + ",".join(str(untrained.get(c, 0)) for c in HISTORY_COLUMNS) + "\n")
    save_json(run_dir / METRICS, {"epochs": 1, "best_epoch": 1, "best_val_perplexity": float(VOCAB),
                                  "tokens_per_second": 0.0})


def describe_machine() -> dict:
    """Platform, CPU model, logical cores, memory and the load average now (at the start of a run)."""
    cpu = platform.processor() or platform.machine()
    memory = None
    if Path("/proc/cpuinfo").exists():
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")]
        cpu = models[0] if models else cpu
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "memory_bytes": memory,
            "load_average": load}


def describe_commit() -> str:
    """HEAD's short sha, with "+dirty" when tracked files have uncommitted changes (recorded results aside)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results").stdout
    return head.stdout.strip() + ("+dirty" if changed.strip() else "")


def describe_corpus(argument: str, path: Path) -> dict:
    """A corpus file as a result line names it: file name, size in bytes and the start of its sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return {"argument": argument, "file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()[:16]}
