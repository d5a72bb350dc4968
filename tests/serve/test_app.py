"""The real server on a free localhost port, called with httpx and with the official openai client: completions
(whole and streamed) equal to `generate`'s text, n > 1, seeds, stop strings, batching, a client that leaves,
suggest, the page, the API key, and every bad request answered with its 4xx while the server serves on."""
from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest

from lstm_textgen.generation.interactive import suggest
from lstm_textgen.generation.sample import generate

from helpers import generate_cli, running_server


def stream_texts(response: httpx.Response) -> tuple[dict[int, str], dict[int, str], list[str]]:
    """Texts and finish reasons per choice index from an SSE stream, and its raw data lines."""
    texts, finishes, lines = {}, {}, []
    for line in response.iter_lines():
        if line.startswith("data: "):
            lines.append(line[6:])
            if line[6:] != "[DONE]":
                for choice in json.loads(line[6:])["choices"]:
                    texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
                    finishes[choice["index"]] = choice["finish_reason"] or finishes.get(choice["index"])
    return texts, finishes, lines


def test_completions_equal_generate_with_the_same_settings_and_seed(server, http, tiny_run):
    body = {"model": "run", "prompt": "the cat", "max_tokens": 25, "temperature": 1.3, "top_k": 6, "top_p": 0.95,
            "repetition_penalty": 1.1, "no_repeat_ngram_size": 3, "n": 3, "seed": 11}
    reply = http.post("/v1/completions", json=body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert [c["text"] for c in data["choices"]] == generate_cli(
        tiny_run, "the cat", "-n", "25", "--temperature", "1.3", "--top-k", "6", "--top-p", "0.95",
        "--repetition-penalty", "1.1", "--no-repeat-ngram-size", "3", "--samples", "3", "--random-seed", "11")
    assert [c["finish_reason"] for c in data["choices"]] == ["length"] * 3
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 75, "total_tokens": 77}
    assert data["object"] == "text_completion" and data["model"] == "run" and data["seed"] == 11
    again = http.post("/v1/completions", json=body).json()
    assert [c["text"] for c in again["choices"]] == [c["text"] for c in data["choices"]]
    other = http.post("/v1/completions", json=body | {"seed": 12}).json()
    assert [c["text"] for c in other["choices"]] != [c["text"] for c in data["choices"]]


def test_a_list_of_prompts_gives_n_choices_each_in_order(http, tiny_run, tmp_path):
    body = {"model": "run", "prompt": ["the cat", "a dog"], "n": 2, "max_tokens": 10, "seed": 3, "temperature": 1.0}
    choices = http.post("/v1/completions", json=body).json()["choices"]
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("a dog\n", encoding="utf-8")
    assert [c["index"] for c in choices] == [0, 1, 2, 3]
    assert [c["text"] for c in choices] == generate_cli(tiny_run, "the cat", "--seeds-file", str(seeds), "--samples",
                                                        "2", "-n", "10", "--random-seed", "3", "--temperature", "1.0")


def test_a_stream_sends_the_same_text_in_chunks_then_done(http):
    body = {"model": "run", "prompt": "the dog", "max_tokens": 30, "seed": 5, "n": 2}
    whole = http.post("/v1/completions", json=body).json()
    with http.stream("POST", "/v1/completions", json=body | {"stream": True,
                                                             "stream_options": {"include_usage": True}}) as reply:
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
        texts, finishes, lines = stream_texts(reply)
    assert lines[-1] == "[DONE]" and json.loads(lines[-2])["usage"] == whole["usage"]
    assert all(json.loads(line)["object"] == "text_completion" for line in lines[:-1])
    assert texts == {c["index"]: c["text"] for c in whole["choices"]}
    assert finishes == {0: "length", 1: "length"}


def test_stop_strings_end_the_text_and_are_left_out(http, tiny_run):
    body = {"model": "run", "prompt": "the cat", "max_tokens": 40, "seed": 2, "temperature": 1.0, "stop": ["mat", "."]}
    choice = http.post("/v1/completions", json=body).json()["choices"][0]
    generated = generate_cli(tiny_run, "the cat", "-n", "40", "--random-seed", "2", "--temperature", "1.0",
                             "--stop", "mat", "--stop", ".")[0]
    assert generated.endswith(("mat", ".")), "pick a seed whose text meets a stop string"
    assert choice["finish_reason"] == "stop"
    assert choice["text"] == generated[:min(generated.find(s) for s in ("mat", ".") if s in generated)]
    with http.stream("POST", "/v1/completions", json=body | {"stream": True}) as reply:
        texts, finishes, _ = stream_texts(reply)
    assert texts[0] == choice["text"] and finishes[0] == "stop"


def test_the_openai_client_works_unchanged(server, http):
    from openai import OpenAI

    client = OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["run"]
    made = client.completions.create(model="run", prompt="the cat", max_tokens=15, n=2, seed=4, stop=["log"],
                                     temperature=0.9, top_p=0.9, extra_body={"top_k": 5})
    raw = http.post("/v1/completions", json={"model": "run", "prompt": "the cat", "max_tokens": 15, "n": 2, "seed": 4,
                                             "stop": ["log"], "temperature": 0.9, "top_p": 0.9, "top_k": 5}).json()
    assert [c.text for c in made.choices] == [c["text"] for c in raw["choices"]]
    assert made.usage.completion_tokens == raw["usage"]["completion_tokens"]
    streamed = {}
    for event in client.completions.create(model="run", prompt="the cat", max_tokens=15, n=2, seed=4, stop=["log"],
                                           temperature=0.9, top_p=0.9, extra_body={"top_k": 5}, stream=True):
        for choice in event.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + choice.text
    assert streamed == {i: c.text for i, c in enumerate(made.choices)}
    import openai

    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="the")
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.completions.create(model="run", prompt="the", temperature=-1)


def test_requests_in_flight_share_one_batch_and_a_client_that_leaves_frees_its_row(server, http):
    batcher = server[1].batcher
    with http.stream("POST", "/v1/completions", json={"model": "run", "prompt": "the", "max_tokens": 100_000,
                                                      "stream": True}) as long:
        lines = long.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        assert batcher.running_rows == 1  # text arrives while the row is still being generated
        short = http.post("/v1/completions", json={"model": "run", "prompt": "a dog", "max_tokens": 20, "seed": 1})
        assert short.status_code == 200 and short.json()["usage"]["completion_tokens"] == 20
        assert batcher.widest >= 2  # the short request stepped beside the long one
    deadline = time.monotonic() + 10  # the long stream's client has gone
    while batcher.running_rows and time.monotonic() < deadline:
        time.sleep(0.02)
    assert batcher.running_rows == 0


def test_suggest_lists_what_the_suggest_command_lists(http, run):
    data = http.post("/v1/suggest", json={"model": "run", "text": "the cat sat on", "k": 4}).json()
    expected = suggest(run, "the cat sat on", 4)
    assert [o["token"] for o in data["next"]] == [w for w, _ in expected]
    assert [o["probability"] for o in data["next"]] == pytest.approx([p for _, p in expected], abs=1e-6)
    assert all(o["text"] == (o["token"] if o["token"] in ".," else " " + o["token"]) for o in data["next"])
    assert data["unknown_seed_words"] == []
    assert http.post("/v1/suggest", json={"model": "run", "text": "the zebra"}).json()["unknown_seed_words"] == ["zebra"]


def test_a_bpe_run_serves_whole_words_and_its_text_unchanged(bpe_run):
    """At the bpe level suggest completes each candidate to a word, as the suggest command does, and a
    completion is generate's text whatever bytes its characters take."""
    from lstm_textgen.run.rundir import load_run

    run = load_run(bpe_run)
    with running_server([bpe_run], max_tokens_cap=1000) as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        data = http.post("/v1/suggest", json={"model": "run", "text": "the café sat by the", "k": 3}).json()
        expected = suggest(run, "the café sat by the", 3)
        assert [o["token"] for o in data["next"]] == [w for w, _ in expected]
        assert [o["probability"] for o in data["next"]] == pytest.approx([p for _, p in expected], abs=1e-6)
        answer = http.post("/v1/completions", json={"model": "run", "prompt": "the naïve", "max_tokens": 25,
                                                     "temperature": 1.5, "seed": 4}).json()
    text = generate(run, "the naïve", length=25, temperature=1.5, random_seed=4)
    assert answer["choices"][0]["text"] == text


def test_models_list_the_runs_with_their_info(http, tiny_run):
    (model,) = http.get("/v1/models").json()["data"]
    assert model["id"] == "run" and model["object"] == "model" and model["owned_by"] == "lstm-textgen"
    assert model["info"]["vocab_size"] > 10 and model["info"]["epochs"] == 2 and "run" not in model["info"]
    assert model["info"]["corpus"] == "corpus.txt"  # the file's name only
    one = http.get("/v1/models/run")
    assert one.json()["id"] == "run"
    for text in (json.dumps(model), one.text):  # no local path of the server's (the corpus sits beside the run)
        assert str(tiny_run.parent) not in text and str(tiny_run.parent).replace("/", "\\/") not in text


def test_the_page_is_one_file_with_nothing_from_elsewhere(http):
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<textarea id="text"' in page.text and "/v1/suggest" in page.text and "/v1/completions" in page.text
    assert "http://" not in page.text and "https://" not in page.text and " src=" not in page.text


def test_an_api_key_is_needed_on_every_api_call_when_set(tiny_run):
    from openai import AuthenticationError, OpenAI

    with running_server([tiny_run], api_key="s3cret") as (url, _):
        with httpx.Client(base_url=url) as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                for method, path in (("GET", "/v1/models"), ("POST", "/v1/completions"), ("POST", "/v1/suggest")):
                    reply = http.request(method, path, headers=headers, json={"model": "run", "prompt": "the"})
                    assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_api_key"
                    assert reply.headers["www-authenticate"] == "Bearer"  # RFC 6750: the scheme to send
            assert http.get("/").status_code == 200  # the page holds no data; its calls need the key
        assert OpenAI(base_url=url + "/v1", api_key="s3cret").completions.create(
            model="run", prompt="the", max_tokens=3).choices[0].finish_reason == "length"
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=url + "/v1", api_key="guess", max_retries=0).models.list()


def test_two_runs_are_served_side_by_side(tiny_run, tmp_path):
    other = shutil.copytree(tiny_run, tmp_path / "other")
    with running_server([tiny_run, other]) as (url, _):
        with httpx.Client(base_url=url) as http:
            assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["run", "other"]
            body = {"prompt": "the cat", "max_tokens": 8, "seed": 1}
            texts = [http.post("/v1/completions", json=body | {"model": m}).json()["choices"][0]["text"]
                     for m in ("run", "other")]
            assert texts[0] == texts[1]  # the same weights, the same seed


BIG = "the cat " * 125_000  # a 1 MB prompt


@pytest.mark.parametrize("case, request_args, status, param, code", [
    ("malformed JSON", {"content": b'{"model": "run", "prompt": '}, 400, None, "invalid_json"),
    ("not an object", {"json": ["the"]}, 400, None, "invalid_json"),
    ("an unknown field", {"json": {"model": "run", "prompt": "the", "max_token": 5}}, 400, "max_token",
     "unknown_field"),
    ("no prompt", {"json": {"model": "run"}}, 400, "prompt", "invalid_type"),
    ("a prompt of mixed ids and text", {"json": {"model": "run", "prompt": [1, "the"]}}, 400, "prompt",
     "invalid_type"),
    ("an empty list of token ids", {"json": {"model": "run", "prompt": [[]]}}, 400, "prompt", "invalid_type"),
    ("a token id past the vocabulary", {"json": {"model": "run", "prompt": [2, 10**9]}}, 400, "prompt",
     "invalid_value"),
    ("the padding id", {"json": {"model": "run", "prompt": [[2, 0]]}}, 400, "prompt", "invalid_value"),
    ("a negative token id", {"json": {"model": "run", "prompt": [-3]}}, 400, "prompt", "invalid_value"),
    ("too many token ids", {"json": {"model": "run", "prompt": [2] * 10_001}}, 400, "prompt", "invalid_value"),
    ("an empty prompt", {"json": {"model": "run", "prompt": "  "}}, 400, "prompt", "invalid_value"),
    ("a prompt with no known word", {"json": {"model": "run", "prompt": "zebra"}}, 400, "prompt", "invalid_value"),
    ("a 1 MB prompt", {"json": {"model": "run", "prompt": BIG}}, 400, "prompt", "invalid_value"),
    ("a body over 1 MiB", {"json": {"model": "run", "prompt": BIG + BIG}}, 413, None, "request_too_large"),
    ("max_tokens as text", {"json": {"model": "run", "prompt": "the", "max_tokens": "ten"}}, 400, "max_tokens",
     "invalid_type"),
    ("max_tokens a float", {"json": {"model": "run", "prompt": "the", "max_tokens": 2.5}}, 400, "max_tokens",
     "invalid_type"),
    ("negative max_tokens", {"json": {"model": "run", "prompt": "the", "max_tokens": -1}}, 400, "max_tokens",
     "invalid_value"),
    ("huge max_tokens", {"json": {"model": "run", "prompt": "the", "max_tokens": 10**30}}, 400, "max_tokens",
     "invalid_value"),
    ("a negative temperature", {"json": {"model": "run", "prompt": "the", "temperature": -0.1}}, 400, "temperature",
     "invalid_value"),
    ("temperature as a boolean", {"json": {"model": "run", "prompt": "the", "temperature": True}}, 400,
     "temperature", "invalid_type"),
    ("temperature past float's range", {"content": b'{"model": "run", "prompt": "the", "temperature": 1e999}'}, 400,
     "temperature", "invalid_value"),
    ("top_p over 1", {"json": {"model": "run", "prompt": "the", "top_p": 1.5}}, 400, "top_p", "invalid_value"),
    ("negative top_k", {"json": {"model": "run", "prompt": "the", "top_k": -3}}, 400, "top_k", "invalid_value"),
    ("n of 0", {"json": {"model": "run", "prompt": "the", "n": 0}}, 400, "n", "invalid_value"),
    ("too many rows", {"json": {"model": "run", "prompt": ["the"] * 8, "n": 9}}, 400, "n", "invalid_value"),
    ("a negative seed", {"json": {"model": "run", "prompt": "the", "seed": -1}}, 400, "seed", "invalid_value"),
    ("an empty stop string", {"json": {"model": "run", "prompt": "the", "stop": [""]}}, 400, "stop",
     "invalid_value"),
    ("stream as text", {"json": {"model": "run", "prompt": "the", "stream": "yes"}}, 400, "stream", "invalid_type"),
    ("echo not a boolean", {"json": {"model": "run", "prompt": "the", "echo": "yes"}}, 400, "echo", "invalid_type"),
    ("logprobs over 5", {"json": {"model": "run", "prompt": "the", "logprobs": 6}}, 400, "logprobs",
     "invalid_value"),
    ("logprobs negative", {"json": {"model": "run", "prompt": "the", "logprobs": -1}}, 400, "logprobs",
     "invalid_value"),
    ("logprobs a boolean", {"json": {"model": "run", "prompt": "the", "logprobs": True}}, 400, "logprobs",
     "invalid_type"),
    ("no model", {"json": {"prompt": "the"}}, 400, "model", "invalid_type"),
    ("an unknown model", {"json": {"model": "gpt-4", "prompt": "the"}}, 404, "model", "model_not_found"),
    ("a relative path as model", {"json": {"model": "../run", "prompt": "the"}}, 404, "model", "model_not_found"),
    ("an absolute path as model", {"json": {"model": "/etc/passwd", "prompt": "the"}}, 404, "model",
     "model_not_found"),
])
def test_a_bad_completion_request_gets_its_4xx_and_the_server_serves_on(http, case, request_args, status, param,
                                                                         code):
    reply = http.post("/v1/completions", **request_args)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert error["message"] and len(error["message"]) < 300  # never the bad value whole
    assert http.post("/v1/completions", json={"model": "run", "prompt": "the", "max_tokens": 2}).status_code == 200


def test_a_served_run_is_the_only_folder_a_model_reaches(http, tiny_run, tmp_path):
    elsewhere = shutil.copytree(tiny_run, tmp_path / "elsewhere")  # a real run, not served
    for model in (str(elsewhere), "elsewhere", str(tiny_run)):
        reply = http.post("/v1/completions", json={"model": model, "prompt": "the"})
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("method, path, body, status, param", [
    ("POST", "/v1/suggest", {"model": "run", "text": 5}, 400, "text"),
    ("POST", "/v1/suggest", {"model": "run", "text": "the", "k": 1000}, 400, "k"),
    ("POST", "/v1/suggest", {"model": "nope", "text": "the"}, 404, "model"),
    ("GET", "/v1/models/nope", None, 404, "model"),
    ("GET", "/v1/completions", None, 405, None),
    ("GET", "/v2/anything", None, 404, None),
])
def test_other_bad_requests_get_openai_errors(http, method, path, body, status, param):
    reply = http.request(method, path, json=body)
    assert reply.status_code == status and reply.json()["error"]["param"] == param


def test_a_client_that_leaves_before_a_whole_answer_frees_its_row_too(server):
    import socket

    url, target = server
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"model": "run", "prompt": "the", "max_tokens": 100_000}).encode()
    with socket.create_connection((host, int(port))) as client:
        client.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        deadline = time.monotonic() + 10
        while not target.batcher.running_rows and time.monotonic() < deadline:
            time.sleep(0.01)
        assert target.batcher.running_rows == 1
    deadline = time.monotonic() + 10
    while target.batcher.running_rows and time.monotonic() < deadline:
        time.sleep(0.02)
    assert target.batcher.running_rows == 0
