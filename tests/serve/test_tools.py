"""Scoring through the API (tools.py, and the logprobs the replies carry): logprobs and echo in OpenAI's legacy and
chat formats, prompts of token ids, and vLLM's tokenizer routes, on real tiny runs behind a real server. A text
echoed and scored with max_tokens 0 gives evaluate's perplexity at every level; a drawn token's logprob is the
model's own, before any sampling rule."""
from __future__ import annotations

import json
import math
import shutil

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from openai import OpenAI

from lstm_textgen.cli import cli
from lstm_textgen.generation.decode import log_softmax
from lstm_textgen.model.stepper import Stepper

from helpers import running_server

HELD_OUT = ("the dog sat on the mat .\na cat and a dog sat by the log .\n\nthe cat ran to the fire , "
            "and the dog sat on the mat by the fire .\n") * 2


@pytest.fixture(scope="module")
def levels(level_runs, tmp_path_factory):
    """A server of the four levels' runs, each served under its level's name (copies: two are named "run")."""
    folder = tmp_path_factory.mktemp("levels")
    copies = [shutil.copytree(path, folder / level, symlinks=True) for level, path in level_runs.items()]
    with running_server(copies, max_tokens_cap=1000) as (url, served):
        assert set(served) == set(level_runs)
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client, {level: level for level in level_runs}


def evaluate_perplexity(run_dir, text: str, tmp_path) -> float:
    held_out = tmp_path / "held_out.txt"
    held_out.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["evaluate", "--run", str(run_dir), str(held_out), "--json"],
                                catch_exceptions=False)
    return json.loads(result.stdout)["perplexity"]


@pytest.mark.parametrize("level", ["word", "whitespace", "char", "bpe"])
def test_a_text_echoed_and_scored_gives_evaluates_perplexity(levels, level_runs, level, tmp_path):
    client, names = levels
    model = names[level]
    ids = client.post("/tokenize", json={"model": model, "prompt": HELD_OUT}).json()["tokens"]
    reply = client.post("/v1/completions", json={"model": model, "prompt": ids, "echo": True, "max_tokens": 0,
                                                 "logprobs": 1})
    assert reply.status_code == 200, reply.text
    choice = reply.json()["choices"][0]
    scored = choice["logprobs"]
    assert scored["token_logprobs"][0] is None and scored["top_logprobs"][0] is None  # nothing predicts the first
    assert len(scored["tokens"]) == len(ids) and reply.json()["usage"]["prompt_tokens"] == len(ids)
    assert "".join(scored["tokens"]) == choice["text"] and choice["finish_reason"] == "length"
    offsets = np.cumsum([0] + [len(token) for token in scored["tokens"][:-1]])
    assert scored["text_offset"] == offsets.tolist()
    for chosen, top in zip(scored["token_logprobs"][1:], scored["top_logprobs"][1:]):
        assert len(top) == 1 and max(top.values()) >= chosen - 1e-9
    mean = -np.mean(scored["token_logprobs"][1:])
    assert math.exp(mean) == pytest.approx(evaluate_perplexity(level_runs[level], HELD_OUT, tmp_path), rel=0.005)


def test_the_prompt_echoes_as_generation_writes_it(levels):
    client, names = levels
    reply = client.post("/v1/completions", json={"model": names["word"], "prompt": "The Cat  sat ON the mat",
                                                 "echo": True, "max_tokens": 0}).json()
    assert reply["choices"][0]["text"] == "the cat sat on the mat" and reply["choices"][0]["logprobs"] is None


def test_lm_evals_request_scores_the_prompt_and_draws_one_greedy_token(server, http):
    """lm-eval's local-completions loglikelihood request, as it sends it: token ids in a list, echo, logprobs 1,
    max_tokens 1, temperature 0; it sums token_logprobs[ctxlen:-1] and checks each against max(top_logprobs)."""
    ids = http.post("/tokenize", json={"prompt": "the cat sat on the mat"}).json()["tokens"]
    body = {"model": "run", "prompt": [ids], "temperature": 0, "max_tokens": 1, "logprobs": 1, "seed": 1234,
            "echo": True}
    reply = http.post("/v1/completions", json=body).json()
    scored = reply["choices"][0]["logprobs"]
    assert len(scored["tokens"]) == len(ids) + 1  # the prompt, then the one drawn token
    last_logprob, last_top = scored["token_logprobs"][-1], scored["top_logprobs"][-1]
    assert last_logprob == pytest.approx(max(last_top.values()))  # greedy: the likeliest token
    assert scored["tokens"][-1] in last_top
    assert http.post("/v1/completions", json=body).json()["choices"] == reply["choices"]


def test_a_drawn_tokens_logprob_is_the_models_before_the_sampling_rules(server, http, run):
    ids = http.post("/tokenize", json={"prompt": "the cat"}).json()["tokens"]
    reply = http.post("/v1/completions", json={
        "model": "run", "prompt": ids, "max_tokens": 6, "logprobs": 3, "temperature": 1.7, "top_k": 4,
        "repetition_penalty": 1.3, "seed": 9}).json()
    choice = reply["choices"][0]
    scored = choice["logprobs"]
    assert "".join(scored["tokens"]) == choice["text"] and len(scored["tokens"]) == 6
    drawn = [run.tokenizer.vocab.index(token.strip()) for token in scored["tokens"]]
    stepper = Stepper(run.weights)
    state, logits = stepper.prefill([ids])
    for token, logprob, top in zip(drawn, scored["token_logprobs"], scored["top_logprobs"]):
        expected = log_softmax(logits)[0]
        assert logprob == pytest.approx(expected[token], abs=1e-5)
        assert list(top.values()) == pytest.approx(np.sort(expected)[::-1][:3], abs=1e-5)  # likeliest first
        logits, state = stepper.step(state, np.array([token]))


def test_streamed_logprobs_are_the_whole_answers_in_pieces(server, http):
    body = {"model": "run", "prompt": "the dog sat", "max_tokens": 8, "logprobs": 2, "echo": True, "seed": 4}
    whole = http.post("/v1/completions", json=body).json()["choices"][0]
    chunks = []
    with http.stream("POST", "/v1/completions", json={**body, "stream": True}) as events:
        for line in events.iter_lines():
            if line.startswith("data: {"):
                chunks.append(json.loads(line[len("data: "):])["choices"][0])
    assert chunks[0]["text"] == "the dog sat" and chunks[0]["logprobs"]["token_logprobs"][0] is None
    assert "".join(chunk["text"] for chunk in chunks) == whole["text"]
    for field in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
        assert [x for chunk in chunks for x in chunk["logprobs"][field]] == whole["logprobs"][field], field


def test_the_openai_client_reads_logprobs_in_both_formats(server):
    client = OpenAI(base_url=server[0] + "/v1", api_key="unused")
    text = client.completions.create(model="run", prompt="the cat", max_tokens=5, logprobs=2, temperature=0)
    scored = text.choices[0].logprobs
    assert "".join(scored.tokens) == text.choices[0].text and all(len(top) == 2 for top in scored.top_logprobs)
    assert scored.token_logprobs == pytest.approx([max(top.values()) for top in scored.top_logprobs])
    chat = client.chat.completions.create(model="run", messages=[{"role": "user", "content": "the cat"}],
                                          max_tokens=5, logprobs=True, top_logprobs=3, temperature=0)
    content = chat.choices[0].logprobs.content
    assert content and all(len(entry.top_logprobs) == 3 for entry in content)
    assert all(bytes(entry.bytes).decode() == entry.token for entry in content)
    assert "".join(entry.token for entry in content).startswith(chat.choices[0].message.content)
    assert [entry.logprob for entry in content] == pytest.approx([entry.top_logprobs[0].logprob for entry in content])


def test_a_stop_string_leaves_the_tokens_after_it_out(server, http):
    greedy = http.post("/v1/completions", json={"model": "run", "prompt": "the cat", "max_tokens": 12,
                                                "temperature": 0}).json()["choices"][0]["text"]
    stop = greedy.split()[2]  # a word the greedy text is sure to write
    reply = http.post("/v1/completions", json={"model": "run", "prompt": "the cat", "max_tokens": 12, "temperature": 0,
                                               "stop": stop, "logprobs": 0}).json()["choices"][0]
    assert reply["finish_reason"] == "stop" and stop not in reply["text"]
    tokens, offsets = reply["logprobs"]["tokens"], reply["logprobs"]["text_offset"]
    assert "".join(tokens).startswith(reply["text"]) and stop in "".join(tokens)  # the token the cut falls in stays
    assert all(offset < len(reply["text"]) for offset in offsets) and len(tokens) < 12  # the ones after it go
    assert reply["logprobs"]["top_logprobs"] == [{}] * len(reply["logprobs"]["tokens"])  # logprobs 0: none listed


def test_the_tokenizer_routes_are_vllms(server, http, run):
    info = http.get("/tokenizer_info").json()
    assert info["eos_token"] is None and info["level"] == "word" and info["vocab_size"] == run.tokenizer.vocab_size
    assert "{% for message in messages %}" in info["chat_template"]
    text = "the cat sat on the zebra"
    tokenized = http.post("/tokenize", json={"model": "run", "prompt": text, "add_special_tokens": False,
                                             "return_token_strs": True}).json()
    assert tokenized["tokens"] == run.tokenizer.encode(text) and tokenized["count"] == 6
    assert tokenized["token_strs"] == ["the", "cat", "sat", "on", "the", "<unk>"]
    assert http.post("/tokenize", json={"prompt": ""}).json()["tokens"] == []
    back = http.post("/detokenize", json={"tokens": tokenized["tokens"][:5]}).json()
    assert back == {"prompt": "the cat sat on the"}


@pytest.mark.parametrize("path, body, param", [
    ("/tokenize", {"prompt": 7}, "prompt"),
    ("/tokenize", {}, "prompt"),
    ("/tokenize", {"prompt": "the", "messages": []}, "messages"),
    ("/tokenize", {"prompt": "the", "add_special_tokens": "no"}, "add_special_tokens"),
    ("/tokenize", {"prompt": "the \ud800"}, "prompt"),
    ("/detokenize", {"tokens": "the"}, "tokens"),
    ("/detokenize", {"tokens": [2, 1.5]}, "tokens"),
    ("/detokenize", {"tokens": [2, 10**6]}, "tokens"),
    ("/detokenize", {"tokens": [2] * 10_001}, "tokens"),
    ("/detokenize", {"tokens": [2], "model": "nope"}, "model"),
])
def test_a_bad_tokenizer_request_is_a_4xx_naming_the_field_and_the_server_serves_on(http, path, body, param):
    refused = http.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert 400 <= refused.status_code < 500 and refused.json()["error"]["param"] == param, refused.text
    assert http.post("/tokenize", json={"prompt": "the cat"}).status_code == 200


def test_with_several_runs_served_the_tokenizer_routes_need_the_model(levels):
    client, names = levels
    for refused in (client.get("/tokenizer_info"), client.post("/tokenize", json={"prompt": "the"})):
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "model"
    info = client.get("/tokenizer_info", params={"model": names["char"]}).json()
    assert info["level"] == "char" and info["model"] == names["char"]
    assert client.get("/tokenizer_info", params={"model": "nope"}).status_code == 404
