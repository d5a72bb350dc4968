"""`lstm-textgen serve` under load: aggregate tokens/s and median / p99 time to first token for 1, 8 and 32
concurrent streaming clients on the reference-sized model.

    python -m benchmarks serve [--clients 1,8,32] [--requests 4] [--tokens 200] [--units N] [--run DIR]

Builds an untrained model of the reference size (vocabulary 10,000, Embedding 100, LSTM 64, Dense 64; see
common.make_reference_run; --units N makes the LSTM N wide) in a temporary run directory unless --run names one,
starts `lstm-textgen serve` on it
as its own process on a free localhost port, and has each level stream the same number of completions of
--tokens tokens, --requests per client at the most clients (so fewer clients each stream more, one after another,
and the one-client baseline runs as long as the others) (POST /v1/completions, "stream": true). Time to first token runs from sending the request to the
first chunk with text. Targets (issue 37): 32 clients at least 4x the aggregate tokens/s of 1 client at every
size, p99 time to first token at most 0.1 s. Timings are wall clock on whatever machine runs it, client and server sharing it.
"""
from __future__ import annotations

import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import SEED, make_reference_run
from benchmarks.results import figure

SPEED_UP_TARGET, TTFT_TARGET = 4.0, 0.1


def start_server(run_dir: Path, tokens: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "lstm_textgen", "serve", "--run", str(run_dir), "--port", "0",
                                "--max-tokens-cap", str(max(tokens, 1))], stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    match = re.search(r" on (http://\S+) ", line)
    if not match:
        process.kill()
        raise SystemExit(f"the server did not start: {line}{process.stderr.read()}")
    return process, match.group(1)


async def one_stream(host: str, port: int, model: str, tokens: int) -> tuple[float, int]:
    """(seconds to the first text, tokens made) for one streamed completion, read off a raw socket: a client
    that parses as little as it can, so that the figures are the server's."""
    body = json.dumps({"model": model, "prompt": SEED, "max_tokens": tokens, "temperature": 1.0, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    start, first = time.perf_counter(), None
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    received = bytearray()
    while data := await reader.read(65536):
        received += data
        if first is None and FIRST_TEXT.search(received):
            first = time.perf_counter() - start
    writer.close()
    if not received.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"the server refused: {bytes(received[:300])}")
    made = USAGE.findall(received)
    return (first if first is not None else time.perf_counter() - start), int(made[-1]) if made else 0


FIRST_TEXT = re.compile(rb'"choices": \[\{"text": "[^"]')  # a chunk with text in it
USAGE = re.compile(rb'"completion_tokens": (\d+)')


async def level(url: str, model: str, clients: int, requests: int, tokens: int) -> dict:
    """Every client streams `requests` completions in turn; all clients at once."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    await one_stream(host, int(port), model, 5)  # warm-up

    async def client_loop():
        return [await one_stream(host, int(port), model, tokens) for _ in range(requests)]

    start = time.perf_counter()
    results = [r for rs in await asyncio.gather(*(client_loop() for _ in range(clients))) for r in rs]
    elapsed = time.perf_counter() - start
    firsts = sorted(first for first, _ in results)
    made = sum(n for _, n in results)
    p99 = statistics.quantiles(firsts, n=100, method="inclusive")[98] if len(firsts) > 1 else firsts[0]
    return {"clients": clients, "requests": len(results), "tokens": made, "seconds": elapsed,
            "tokens_per_second": made / elapsed, "ttft_median": statistics.median(firsts), "ttft_p99": p99}


def add_arguments(parser) -> None:
    parser.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--requests", type=int, default=4,
                        help="completions each client streams in turn at the most clients (more, at fewer clients)")
    parser.add_argument("--tokens", type=int, default=200, help="max_tokens of each completion")
    parser.add_argument("--units", type=int, help="the fresh model's LSTM width (64, the reference size, unless given)")
    parser.add_argument("--run", type=Path, help="serve this run instead of a fresh reference-sized one")


def run(args) -> tuple[list[dict], dict | None]:
    levels = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run
        if run_dir is None:
            run_dir = Path(tmp) / "reference"
            make_reference_run(run_dir, args.units)
        ceiling = {rows: step_tokens_per_second(run_dir, rows) for rows in (1, max(levels))}
        process, url = start_server(run_dir, args.tokens)
        try:
            model = httpx.get(url + "/v1/models").json()["data"][0]["id"]
            total = args.requests * max(levels)  # every level streams as many completions
            rows = [asyncio.run(level(url, model, c, max(1, total // c), args.tokens)) for c in levels]
        finally:
            process.terminate()
            process.wait(30)
    report(rows, ceiling)
    return figures(rows, ceiling)


def step_tokens_per_second(run_dir: Path, rows: int, seconds: float = 2.0) -> float:
    """The decode step alone, as the server's batch thread runs it (one BLAS thread), on `rows` rows: the tokens/s
    no server could pass on this machine, whatever its HTTP side costs."""
    import dataclasses

    from threadpoolctl import threadpool_limits

    from lstm_textgen.generation.decode import Batch, Row
    from lstm_textgen.model.stepper import Stepper
    from lstm_textgen.run.rundir import load_run

    run = load_run(run_dir)
    settings = dataclasses.replace(run.config.generate, length=10**9, temperature=1.0)
    with threadpool_limits(limits=1, user_api="blas"):
        batch, memo, steps = Batch(Stepper(run.weights)), {}, 0
        batch.admit([Row(run.tokenizer, [2, 3], settings, i, memo, group=i, index=i) for i in range(rows)])
        for _ in range(10):
            batch.advance()
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            batch.advance()
            steps += 1
        return steps * rows / (time.perf_counter() - start)


def figures(rows: list[dict], ceiling: dict[int, float]) -> tuple[list[dict], dict]:
    """Each level's tokens/s and time to first token; the last level against the first (the baseline); the decode
    step alone at 1 and at the most rows, and its own ratio."""
    found = [figure(f"decode step alone, {n} row{'s' if n != 1 else ''}", value, "tokens/s")
             for n, value in ceiling.items()]
    found.append(figure("decode step alone: most rows / 1 row", ceiling[max(ceiling)] / ceiling[1], "x", main=True))
    for row in rows:
        clients = _clients(row["clients"])
        found += [figure(clients, row["tokens_per_second"], "tokens/s", main=row is rows[-1]),
                  figure(f"{clients}: TTFT median", row["ttft_median"], "s"),
                  figure(f"{clients}: TTFT p99", row["ttft_p99"], "s")]
    first = rows[0]
    found += [figure("last level / first, tokens/s", rows[-1]["tokens_per_second"] / first["tokens_per_second"], "x",
                     main=True),
              figure("worst TTFT p99", max(row["ttft_p99"] for row in rows), "s", main=True)]
    return found, figure(_clients(first["clients"]), first["tokens_per_second"], "tokens/s")


def _clients(n: int) -> str:
    return f"{n} client{'s' if n != 1 else ''}"


def report(rows: list[dict], ceiling: dict[int, float]) -> None:
    base = rows[0]["tokens_per_second"]
    most = max(ceiling)
    print(f"decode step alone (no HTTP, one BLAS thread): {ceiling[1]:,.0f} tokens/s on 1 row, {ceiling[most]:,.0f} "
          f"on {most} rows ({ceiling[most] / ceiling[1]:.1f}x)")
    print(f"{'clients':>7}  {'requests':>8}  {'tokens':>8}  {'tokens/s':>9}  {'vs 1st':>6}  "
          f"{'TTFT median':>11}  {'TTFT p99':>8}")
    for row in rows:
        print(f"{row['clients']:>7}  {row['requests']:>8}  {row['tokens']:>8,}  {row['tokens_per_second']:>9,.0f}  "
              f"{row['tokens_per_second'] / base:>5.1f}x  {row['ttft_median']:>10.3f}s  {row['ttft_p99']:>7.3f}s")
    last = rows[-1]
    if len(rows) > 1:
        speed_up = last["tokens_per_second"] / base
        print(f"target: {last['clients']} clients >= {SPEED_UP_TARGET:g}x the first row's tokens/s: {speed_up:.1f}x "
              f"({'met' if speed_up >= SPEED_UP_TARGET else 'NOT met'})")
    worst = max(row["ttft_p99"] for row in rows)
    print(f"target: p99 time to first token <= {TTFT_TARGET} s: worst {worst:.3f} s "
          f"({'met' if worst <= TTFT_TARGET else 'NOT met'})")
