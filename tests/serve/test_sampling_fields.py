"""The sampling fields real clients send, over the real server: temperature 0 (greedy), presence_penalty,
frequency_penalty, logit_bias and min_p, each equal to what generate makes with the same settings, and each bad
value a 400 in OpenAI's shape naming its field while the server serves on."""
from __future__ import annotations


import pytest

from lstm_textgen.generation.sample import generate

from helpers import generate_cli


def complete(http, **fields) -> list[str]:
    reply = http.post("/v1/completions", json={"model": "run", "prompt": "the cat", "max_tokens": 20} | fields)
    assert reply.status_code == 200, reply.text
    return [choice["text"] for choice in reply.json()["choices"]]


def test_temperature_zero_is_greedy(http, tiny_run):
    greedy = generate_cli(tiny_run, "the cat", "-n", "20", "--greedy")
    assert complete(http, temperature=0, seed=1, n=2) == greedy * 2
    assert complete(http, temperature=0, top_p=0.5, top_k=3, seed=2) == greedy
    assert generate_cli(tiny_run, "the cat", "-n", "20", "-t", "0") == greedy


def test_frequency_and_presence_penalties_are_generates_flags_over_http(http, tiny_run):
    penalised = complete(http, temperature=1.2, seed=3, n=2, frequency_penalty=1.5, presence_penalty=0.7)
    assert penalised == generate_cli(tiny_run, "the cat", "-n", "20", "-t", "1.2", "--random-seed", "3", "--samples",
                                     "2", "--frequency-penalty", "1.5", "--presence-penalty", "0.7")
    assert penalised != complete(http, temperature=1.2, seed=3, n=2)
    repeats = [len(text.split()) - len(set(text.split())) for text in complete(http, temperature=0, n=1)
               + complete(http, temperature=0, frequency_penalty=2.0, presence_penalty=2.0)]
    assert repeats[1] < repeats[0]  # greedy recites; the penalties push it to new words


def test_logit_bias_bans_and_forces_token_ids_as_the_library_does(server, http):
    run = server[1].run
    the = run.tokenizer.encode("the")[0]
    greedy = complete(http, temperature=0)[0]
    assert "the" in greedy.split()
    banned = complete(http, temperature=0, logit_bias={str(the): -100})[0]
    assert "the" not in banned.split()
    assert banned == generate(run, "the cat", length=20, temperature=0, logit_bias={the: -100.0})
    forced = complete(http, temperature=1.5, seed=4, logit_bias={str(the): 100, "5": 0.5})[0]
    assert forced.split() == ["the"] * 20
    sampled = complete(http, temperature=1.5, seed=4, n=2, logit_bias={"5": 3, "6": -2.5})
    assert sampled == [generate(run, "the cat", length=20, temperature=1.5, random_seed=4 + i,
                                logit_bias={5: 3.0, 6: -2.5}) for i in range(2)]


def test_min_p_is_accepted_and_samples_as_generate_does(http, tiny_run):
    assert complete(http, temperature=1.5, seed=6, n=2, min_p=0.2) == generate_cli(
        tiny_run, "the cat", "-n", "20", "-t", "1.5", "--random-seed", "6", "--samples", "2", "--min-p", "0.2")


def body(**fields) -> dict:
    return {"json": {"model": "run", "prompt": "the", "max_tokens": 3} | fields}


@pytest.mark.parametrize("request_args, param, code", [
    (body(temperature=-0.5), "temperature", "invalid_value"),
    (body(temperature="0"), "temperature", "invalid_type"),
    (body(presence_penalty="high"), "presence_penalty", "invalid_type"),
    (body(presence_penalty=2.5), "presence_penalty", "invalid_value"),
    (body(frequency_penalty=-3), "frequency_penalty", "invalid_value"),
    (body(frequency_penalty=True), "frequency_penalty", "invalid_type"),
    ({"content": b'{"model": "run", "prompt": "the", "frequency_penalty": 1e999}'}, "frequency_penalty",
     "invalid_value"),
    ({"content": b'{"model": "run", "prompt": "the", "presence_penalty": NaN}'}, None, "invalid_json"),
    (body(min_p=1.5), "min_p", "invalid_value"),
    (body(min_p=[0.1]), "min_p", "invalid_type"),
    (body(logit_bias=[1, 2]), "logit_bias", "invalid_type"),
    (body(logit_bias={"the": 5}), "logit_bias", "invalid_value"),
    (body(logit_bias={"1.5": 5}), "logit_bias", "invalid_value"),
    (body(logit_bias={"-3": 5}), "logit_bias", "invalid_value"),
    (body(logit_bias={"99999": 5}), "logit_bias", "invalid_value"),
    (body(logit_bias={"9" * 400: 5}), "logit_bias", "invalid_value"),
    (body(logit_bias={"5": 101}), "logit_bias", "invalid_value"),
    (body(logit_bias={"5": "-100"}), "logit_bias", "invalid_type"),
    (body(logit_bias={"5": None}), "logit_bias", "invalid_type"),
    ({"content": b'{"model": "run", "prompt": "the", "logit_bias": {"5": -1e999}}'}, "logit_bias", "invalid_value"),
    (body(logit_bias={str(i): 1 for i in range(301)}), "logit_bias", "invalid_value"),
    (body(logit_bias={str(i): 1 for i in range(100_000)}), "logit_bias", "invalid_value"),
    (body(presence_penalties=0.5), "presence_penalties", "unknown_field"),
])
def test_a_bad_sampling_field_is_a_400_naming_it_and_the_server_serves_on(http, request_args, param, code):
    reply = http.post("/v1/completions", **request_args)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert (param or "JSON") in error["message"] and len(error["message"]) < 300
    assert complete(http, max_tokens=2, temperature=0, presence_penalty=0.5, logit_bias={"5": -1})


def test_a_near_miss_of_a_new_field_names_it(http):
    reply = http.post("/v1/completions", json={"model": "run", "prompt": "the", "presence_penalties": 0.5})
    assert reply.json()["error"]["message"] == "unknown field 'presence_penalties' (did you mean 'presence_penalty'?)"
    reply = http.post("/v1/completions", json={"model": "run", "prompt": "the", "logit_biases": {}})
    assert "did you mean 'logit_bias'?" in reply.json()["error"]["message"]
