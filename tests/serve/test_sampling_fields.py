"""The sampling fields real clients send, over the real server: temperature 0 (greedy), presence_penalty,
frequency_penalty, logit_bias and min_p, each equal to what generate makes with the same settings, and each bad
value a 400 in OpenAI's shape naming its field while the server serves on."""
from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli

from helpers import running_server


@pytest.fixture(scope="module")
def server(tiny_run):
    with running_server([tiny_run]) as (url, served):
        yield url, served["run"]


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server[0], timeout=30) as client:
        yield client


def generate_cli(tiny_run, *args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["generate", "--run", str(tiny_run), "--seed", "the cat", "--jsonl", *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line)["text"] for line in result.stdout.splitlines()]


def complete(http, **fields) -> list[str]:
    reply = http.post("/v1/completions", json={"model": "run", "prompt": "the cat", "max_tokens": 20} | fields)
    assert reply.status_code == 200, reply.text
    return [choice["text"] for choice in reply.json()["choices"]]


def test_temperature_zero_is_greedy(http, tiny_run):
    greedy = generate_cli(tiny_run, "-n", "20", "--greedy")
    assert complete(http, temperature=0, seed=1, n=2) == greedy * 2
    assert complete(http, temperature=0, top_p=0.5, top_k=3, seed=2) == greedy
    assert generate_cli(tiny_run, "-n", "20", "-t", "0") == greedy


def test_frequency_and_presence_penalties_are_generates_flags_over_http(http, tiny_run):
    penalised = complete(http, temperature=1.2, seed=3, n=2, frequency_penalty=1.5, presence_penalty=0.7)
    assert penalised == generate_cli(tiny_run, "-n", "20", "-t", "1.2", "--random-seed", "3", "--samples", "2",
                                     "--frequency-penalty", "1.5", "--presence-penalty", "0.7")
    assert penalised != complete(http, temperature=1.2, seed=3, n=2)
    repeats = [len(text.split()) - len(set(text.split())) for text in complete(http, temperature=0, n=1)
               + complete(http, temperature=0, frequency_penalty=2.0, presence_penalty=2.0)]
    assert repeats[1] < repeats[0]  # greedy recites; the penalties push it to new words
