"""`lstm-textgen export` on a trained run: each format's file size (float32, float16, int8), how closely it matched
the run, and its runtime's single-stream tokens/s beside the numpy stepper's (what `generate` uses), in the same
run; and the web page's tokens/s in Chromium.

    python -m benchmarks export [--corpus data/tinyshakespeare.txt] [--minutes 3] [--run DIR] [--tokens 500]

Trains configs/default.yaml on --corpus for --minutes (the demo's shape: vocabulary 10,000, embedding 100, one LSTM
of 128, Dense 128), unless --run names a trained run. One stream, one token at a time, batch 1: the phone's and the
page's case. Targets (issue 39): int8 at most 30% of float32 per format. Timings are wall clock: compare rows.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, SHIPPED_CORPUS, add_corpus, cli_command
from benchmarks.results import figure

EXPORTS = [("savedmodel", None), ("tflite", None), ("tflite", "float16"), ("tflite", "int8"), ("onnx", None),
           ("onnx", "float16"), ("onnx", "int8"), ("web", None), ("web", "float16"), ("web", "int8")]
INT8_SHARE = 0.30


def add_arguments(parser) -> None:
    add_corpus(parser, "text to train the run on", default=SHIPPED_CORPUS)
    parser.add_argument("--minutes", type=float, default=3.0, help="training minutes (without --run)")
    parser.add_argument("--run", type=Path, help="a trained run to export instead of training one")
    parser.add_argument("--tokens", type=int, default=500, help="tokens stepped per runtime")


def run(args) -> tuple[list[dict], dict | None]:
    from lstm_textgen.cli.quiet import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's and the converters' start-up lines off the table
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or _train(args.corpus, args.minutes, Path(tmp) / "run")
        rows = [_measure(run_dir, fmt, quantize, Path(tmp) / f"{fmt}-{quantize}", args.tokens)
                for fmt, quantize in EXPORTS]
        numpy_rate = _numpy_rate(run_dir, args.tokens)
        page_rate = _page_rate(Path(tmp) / "web-None", args.tokens)
    return _report(rows, numpy_rate, page_rate)


def _train(corpus: Path, minutes: float, run_dir: Path) -> Path:
    subprocess.run(cli_command() + ["train", str(corpus), "--run", str(run_dir), "--config",
                                    str(ROOT / "configs" / "default.yaml"), "--set", f"train.max_minutes={minutes}",
                                    "--set", "train.epochs=1000"], check=True, capture_output=True)
    return run_dir


def _measure(run_dir: Path, fmt: str, quantize: str | None, out: Path, tokens: int) -> dict:
    from lstm_textgen.errors import ExportError
    from lstm_textgen.export.write import export

    start = time.perf_counter()
    try:
        done = export(run_dir, fmt, out, quantize)
    except ExportError as e:
        return {"fmt": fmt, "quantize": quantize, "refused": str(e)}
    seconds = time.perf_counter() - start
    size = done.sizes.get("weights.bin") if fmt == "web" else sum(done.sizes.values())
    rate = None if fmt == "web" else _runner_rate(fmt, out, tokens)
    return {"fmt": fmt, "quantize": quantize, "size": size, "seconds": seconds, "figures": done.figures,
            "rate": rate}


def _ids(run_dir: Path, tokens: int) -> np.ndarray:
    from lstm_textgen.export.check import held_out
    from lstm_textgen.run.rundir import load_run

    return held_out(load_run(run_dir), tokens)[0]


def _runner_rate(fmt: str, out: Path, tokens: int) -> float:
    """Tokens/s of the format's runtime stepping one stream (batch 1), state carried by the caller."""
    from lstm_textgen.export import formats
    from lstm_textgen.export.folder import read_manifest

    runner = getattr(formats, f"open_{fmt}")(out)
    ids = np.resize(_ids(Path(read_manifest(out)["run"]["path"]), tokens), tokens)
    inputs = read_manifest(out)["signatures"]["step"]["inputs"][1:]
    state = {t["name"]: np.zeros((1, t["shape"][1]), np.float32) for t in inputs}
    runner.step(ids[:1], state)  # warm up
    start = time.perf_counter()
    for token in ids:
        _, state = runner.step(np.array([token], np.int32), state)
    return tokens / (time.perf_counter() - start)


def _numpy_rate(run_dir: Path, tokens: int) -> float:
    from lstm_textgen.model.stepper import Stepper, blas_threads
    from lstm_textgen.run.rundir import load_run

    stepper = Stepper(load_run(run_dir).weights)
    ids, state = np.resize(_ids(run_dir, tokens), tokens), stepper.zero_state(1)
    with blas_threads():
        start = time.perf_counter()
        for token in ids:
            _, state = stepper.step(state, np.array([token]))
        return tokens / (time.perf_counter() - start)


def _page_rate(folder: Path, tokens: int) -> float | None:
    """Tokens/s of lstmTextgen.generate(greedy) in headless Chromium, the page served over http (None: no browser)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, headless=True)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            page.evaluate("lstmTextgen.ready")
            seconds = page.evaluate("""async (n) => {
                await lstmTextgen.generate("the", 5, {greedy: true});
                const start = performance.now();
                await lstmTextgen.generate("the", n, {greedy: true});
                return (performance.now() - start) / 1000; }""", tokens)
            browser.close()
    finally:
        server.shutdown()
    return tokens / seconds


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _report(rows: list[dict], numpy_rate: float, page_rate: float | None) -> tuple[list[dict], dict]:
    figures = [figure("numpy stepper", numpy_rate, "tokens/s")]
    print(f"{'format':<20} {'size MB':>9} {'vs float32':>10} {'top-1':>7} {'ppl change':>10} {'tokens/s':>9} "
          f"{'vs numpy':>8} {'export s':>8}")
    base = {r["fmt"]: r["size"] for r in rows if r["quantize"] is None and "size" in r}
    for r in rows:
        name = r["fmt"] + (f" {r['quantize']}" if r["quantize"] else "")
        if "refused" in r:
            print(f"{name:<20} refused: {r['refused']}")
            continue
        f, share = r["figures"], r["size"] / base[r["fmt"]]
        rate = page_rate if r["fmt"] == "web" and r["quantize"] is None else r["rate"]
        change = 100 * (f.perplexity / f.run_perplexity - 1)
        speed = f"{rate:9,.0f} {rate / numpy_rate:7.2f}x" if rate else f"{'-':>9} {'-':>8}"
        print(f"{name:<20} {r['size'] / 1e6:9.2f} {share:9.0%} {f.top1:7.1%} {change:+9.2f}% {speed} "
              f"{r['seconds']:8.1f}")
        figures += [figure(f"{name}: size", r["size"] / 1e6, "MB", main=r["quantize"] is None),
                    figure(f"{name}: top-1 agreement", f.top1, "share"),
                    figure(f"{name}: perplexity change", change, "%")]
        if r["quantize"] == "int8":
            figures.append(figure(f"{name}: share of float32", share, "x", main=True))
            print(f"{'':<20} target: int8 at most {INT8_SHARE:.0%} of float32: {share:.0%} "
                  f"({'met' if share <= INT8_SHARE else 'NOT met'})")
        if rate:
            figures.append(figure(f"{name}: tokens/s", rate, "tokens/s", main=True))
    print(f"{'numpy stepper':<20} {'':>9} {'':>10} {'':>7} {'':>10} {numpy_rate:9,.0f} {1:7.2f}x")
    print("web tokens/s: lstmTextgen.generate(greedy) in headless Chromium" if page_rate else
          "web tokens/s: not measured (no Chromium on PATH)")
    return figures, figure("numpy stepper", numpy_rate, "tokens/s")
