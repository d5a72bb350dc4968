"""`lstm-textgen serve` as a person runs it: a real process on a free port, stopped by Ctrl-C or SIGTERM (with a
stream in flight), the API key from the environment, and one-line errors."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.serve.server import GRACE_SECONDS, bind


def start(run_dir, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, str, float]:
    """The server process, its URL and the seconds it took to listen."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "lstm_textgen", "serve", "--run", str(run_dir), "--port", "0",
                                *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=os.environ | (env or {}))
    line = process.stderr.readline()
    match = re.match(r"serving run on (http://127\.0\.0\.1:\d+) ", line)
    if not match:
        process.kill()
        pytest.fail(f"no serving line: {line}{process.communicate()[1]}")
    return process, match.group(1), time.monotonic() - started


def stop(process: subprocess.Popen, sig: int) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=GRACE_SECONDS + 20)
    finally:
        process.kill()
    return process.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_then_stops_cleanly_on_a_signal(tiny_run, sig):
    process, url, seconds = start(tiny_run)
    print(f"listening {seconds:.2f} s after the process started")
    reply = httpx.post(url + "/v1/completions", json={"model": "run", "prompt": "the cat", "max_tokens": 5})
    assert reply.status_code == 200 and reply.json()["choices"][0]["finish_reason"] == "length"
    code, err = stop(process, sig)
    assert code == 0 and err.strip().endswith("stopped") and "Traceback" not in err


@pytest.mark.slow
def test_sigterm_with_a_stream_in_flight_ends_the_stream_and_the_process(tiny_run):
    process, url, _ = start(tiny_run, "--max-tokens-cap", "100000")
    with httpx.stream("POST", url + "/v1/completions", timeout=30,
                      json={"model": "run", "prompt": "the", "max_tokens": 100_000, "stream": True}) as reply:
        lines = reply.iter_lines()
        assert next(lines).startswith("data: ")
        process.send_signal(signal.SIGTERM)
        began = time.monotonic()
        last = [line for line in lines if line.startswith("data: ")][-1]
    assert time.monotonic() - began < GRACE_SECONDS + 10
    assert last == "data: [DONE]" or "the server is stopping" in last  # finished, or ended after the grace
    code, err = stop(process, signal.SIGTERM)
    assert code == 0 and "Traceback" not in err


def test_the_api_key_can_come_from_the_environment(tiny_run):
    process, url, _ = start(tiny_run, env={"LSTM_TEXTGEN_API_KEY": "k3y"})
    try:
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer k3y"}).status_code == 200
    finally:
        stop(process, signal.SIGINT)


@pytest.mark.parametrize("args, fragment", [
    (["--run", "no_such_run"], "no_such_run"),
    (["--run", "{run}", "--host", "192.0.2.1"], "cannot listen on 192.0.2.1"),
    (["--run", "{run}", "--port", "{taken}"], "choose another with --port"),
])
def test_serve_user_errors_are_one_line(tiny_run, args, fragment):
    taken = bind("127.0.0.1", 0)
    taken.listen()
    try:
        values = {"run": str(tiny_run), "taken": str(taken.getsockname()[1])}
        result = CliRunner().invoke(cli, ["serve", *[a.format(**values) for a in args]])
    finally:
        taken.close()
    assert result.exit_code == 1 and result.output.startswith("Error: ") and fragment in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_access_log_is_one_line_per_request_on_stderr(tiny_run, log_format):
    process, url, _ = start(tiny_run, "--log-format", log_format)
    try:
        assert httpx.post(url + "/v1/completions", json={"model": "run", "prompt": "the", "max_tokens": 3}
                          ).status_code == 200
        assert httpx.post(url + "/v1/completions", json={"model": "run", "prompt": 5}).status_code == 400
        assert httpx.get(url + "/health").status_code == 200
    finally:
        code, err = stop(process, signal.SIGINT)
    assert code == 0 and err.splitlines()[-1] == "stopped"
    lines = err.splitlines()[:-1]
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert [(r["method"], r["path"], r["status"], r["tokens"]) for r in records] == [
            ("POST", "/v1/completions", 200, 3), ("POST", "/v1/completions", 400, None), ("GET", "/health", 200, None)]
        assert all(r["ms"] >= 0 and r["time"].endswith("Z") for r in records)
    else:
        assert [line.split()[1:5] for line in lines] == [["POST", "/v1/completions", "200", "3"],
                                                         ["POST", "/v1/completions", "400", "-"],
                                                         ["GET", "/health", "200", "-"]]


@pytest.mark.parametrize("origin", ["example.com", "https://example.com/", "https://exa mple.com"])
def test_a_bad_cors_origin_is_one_line_error(tiny_run, origin):
    result = CliRunner().invoke(cli, ["serve", "--run", str(tiny_run), "--cors-origin", "https://ok.example",
                                      "--cors-origin", origin])
    assert result.exit_code == 1 and result.output.startswith("Error: --cors-origin ")
    assert len(result.output.strip().splitlines()) == 1
