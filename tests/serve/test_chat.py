"""/v1/chat/completions on the real server: the conversation rendered by the run's chat template and continued as a
completion of that prompt is (same settings, same seed, same text), stopped at the turn's end; the chat.completion
objects and chunks the official openai client reads; every bad message or template a 400 naming it."""
from __future__ import annotations

import json

import httpx
import pytest

from lstm_textgen.config import GenerateConfig
from lstm_textgen.errors import ConfigError
from lstm_textgen.serve.chat import DEFAULT_TEMPLATE, MAX_MESSAGES, template

from helpers import running_server

MESSAGES = [{"role": "system", "content": "a story of a cat"}, {"role": "user", "content": "the cat sat on"}]
RENDERED = "system:\na story of a cat\n\nuser:\nthe cat sat on\n\nassistant:\n"


def test_the_default_template_renders_each_turn_and_ends_a_turn_with_a_blank_line():
    chat = template(None)
    assert chat.render(MESSAGES) == RENDERED
    assert chat.stops == ["\n\n"]
    assert template(DEFAULT_TEMPLATE).render(MESSAGES, add_generation_prompt=False) == RENDERED[:-len("assistant:\n")]


def test_a_chat_is_the_completion_of_its_rendered_conversation(http):
    chat = http.post("/v1/chat/completions", json={"model": "run", "messages": MESSAGES, "max_tokens": 20,
                                                   "seed": 5, "n": 2, "temperature": 1.2})
    assert chat.status_code == 200, chat.text
    same = http.post("/v1/completions", json={"model": "run", "prompt": RENDERED, "max_tokens": 20, "seed": 5, "n": 2,
                                              "temperature": 1.2, "stop": ["\n\n"]}).json()
    data = chat.json()
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-") and data["seed"] == 5
    assert [c["message"] for c in data["choices"]] == [{"role": "assistant", "content": c["text"]}
                                                       for c in same["choices"]]
    assert [c["finish_reason"] for c in data["choices"]] == [c["finish_reason"] for c in same["choices"]]
    assert data["usage"] == same["usage"]


def test_a_streamed_chat_sends_the_role_first_then_the_text_then_the_finish(http):
    body = {"model": "run", "messages": MESSAGES, "max_completion_tokens": 15, "seed": 2, "stream": True,
            "stream_options": {"include_usage": True}}
    whole = http.post("/v1/chat/completions", json={**body, "stream": False, "stream_options": None}).json()
    with http.stream("POST", "/v1/chat/completions", json=body) as reply:
        lines = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["role"] == "assistant" and all("role" not in d for d in deltas[1:])
    assert "".join(d.get("content", "") for d in deltas) == whole["choices"][0]["message"]["content"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 15


def test_the_openai_client_chats_unchanged(server, http):
    from openai import OpenAI

    client = OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0)
    answer = client.chat.completions.create(model="run", messages=MESSAGES, max_tokens=10, seed=3)
    whole = http.post("/v1/chat/completions", json={"model": "run", "messages": MESSAGES, "max_tokens": 10,
                                                    "seed": 3}).json()
    assert answer.choices[0].message.content == whole["choices"][0]["message"]["content"]
    assert answer.choices[0].message.role == "assistant"
    streamed = client.chat.completions.create(model="run", messages=MESSAGES, max_tokens=10, seed=3, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices) == \
        answer.choices[0].message.content


def test_langchains_chat_openai_chats_unchanged(server, http):
    """LangChain's ChatOpenAI (langchain-openai, a test extra) over the server: invoke and stream give the chat
    answer the API gives for the same messages (greedy: temperature 0)."""
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=server[0] + "/v1", api_key="unused", model="run", max_tokens=10, temperature=0,
                      max_retries=0)
    reply = chat.invoke([("system", MESSAGES[0]["content"]), ("user", MESSAGES[1]["content"])])
    whole = http.post("/v1/chat/completions", json={"model": "run", "messages": MESSAGES[:2], "max_tokens": 10,
                                                    "temperature": 0}).json()["choices"][0]
    assert reply.content == whole["message"]["content"] and reply.content
    assert reply.response_metadata["finish_reason"] == whole["finish_reason"]
    streamed = "".join(chunk.content for chunk in chat.stream([("system", MESSAGES[0]["content"]),
                                                                ("user", MESSAGES[1]["content"])]))
    assert streamed == reply.content


def test_the_answer_stops_where_the_runs_template_ends_a_turn(tiny_run):
    with running_server([tiny_run]) as (url, served):
        generate = served["run"].run.config.generate
        generate.chat_template = "{% for m in messages %}{{ m.content }}\n{% endfor %}"  # a turn a line
        assert template(generate.chat_template).stops == ["\n"]
        with httpx.Client(base_url=url, timeout=30) as http:
            body = {"model": "run", "messages": [{"role": "user", "content": "the dog sat on the log"}],
                    "max_tokens": 200, "seed": 1, "n": 4}
            choices = http.post("/v1/chat/completions", json=body).json()["choices"]
    assert all(c["finish_reason"] == "stop" and "\n" not in c["message"]["content"] for c in choices)
    assert all(c["message"]["content"].strip() for c in choices)


def test_a_template_that_does_not_parse_is_refused_where_the_config_is_checked():
    with pytest.raises(ConfigError, match="generate.chat_template is not a Jinja2 template"):
        GenerateConfig(chat_template="{% for m in messages %}").check()


def test_a_template_that_raises_is_a_400_and_the_server_serves_on(tiny_run):
    with running_server([tiny_run]) as (url, served):
        served["run"].run.config.generate.chat_template = (
            "{% if messages[0].role != 'user' %}{{ raise_exception('the first turn must be the user') }}{% endif %}"
            "{% for m in messages %}{{ m.content }}\n{% endfor %}")
        with httpx.Client(base_url=url, timeout=30) as http:
            refused = http.post("/v1/chat/completions", json={"model": "run", "messages": MESSAGES})
            served_on = http.post("/v1/chat/completions", json={"model": "run", "messages": MESSAGES[1:],
                                                               "max_tokens": 3})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "chat_template_error"
    assert "the first turn must be the user" in refused.json()["error"]["message"]
    assert served_on.status_code == 200


@pytest.mark.parametrize("body, param", [
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": "hello"}, "messages"),
    ({"messages": [{"role": "user", "content": "the cat"}] * (MAX_MESSAGES + 1)}, "messages"),
    ({"messages": [{"role": "narrator", "content": "the cat"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content"),
    ({"messages": [{"role": "user", "content": "the \ud800 cat"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "the cat", "tool_calls": []}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": "the cat" * 20_000}]}, "messages"),
    ({"messages": MESSAGES, "max_tokens": 5, "max_completion_tokens": 5}, "max_completion_tokens"),
    ({"messages": MESSAGES, "logprobs": 3}, "logprobs"),
    ({"messages": MESSAGES, "top_logprobs": 2}, "top_logprobs"),
    ({"messages": MESSAGES, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"messages": MESSAGES, "echo": True}, "echo"),
    ({"messages": MESSAGES, "prompt": "the cat"}, "prompt"),
    ({"messages": MESSAGES, "temperature": -1}, "temperature"),
    ({"messages": MESSAGES, "mesages": []}, "mesages"),
])
def test_a_bad_chat_request_is_a_400_naming_the_field_and_the_server_serves_on(http, body, param):
    raw = json.dumps({"model": "run", **body})  # json.dumps keeps a lone surrogate as \ud800
    refused = http.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == param
    assert http.post("/v1/chat/completions", json={"model": "run", "messages": MESSAGES,
                                                   "max_tokens": 2}).status_code == 200
