"""The wire format: request bodies into settings on the run's own, stop strings cut as OpenAI cuts them, and the
error object. (Every bad request through the real server is in test_app.py.)"""
from __future__ import annotations

import json

import pytest

from lstm_textgen.config import GenerateConfig as Settings
from lstm_textgen.serve.protocol import APIError, completion_settings, parse_completion, parse_json, parse_suggest
from lstm_textgen.serve.replies import ChunkWriter, StopCut


def test_a_full_request_becomes_settings_on_top_of_the_runs():
    body = {"model": "a", "prompt": ["one", "two"], "max_tokens": 7, "temperature": 1, "top_p": 0.5, "n": 3,
            "stop": "\n", "seed": 9, "stream": True, "stream_options": {"include_usage": True}, "top_k": 4,
            "repetition_penalty": 1.5, "no_repeat_ngram_size": 2, "echo": False, "user": "me"}
    request = parse_completion(body, 100)
    assert (request.model, request.prompts, request.n, request.seed, request.stream, request.include_usage) == \
        ("a", ["one", "two"], 3, 9, True, True)
    run_settings = Settings(length=60, temperature=0.8, stop_newlines=2, min_length=1)
    settings = completion_settings(request, run_settings, 100, 50)
    assert settings == Settings(length=7, temperature=1, top_p=0.5, top_k=4, repetition_penalty=1.5,
                                no_repeat_ngram_size=2, stop=["\n"], stop_newlines=2, min_length=1)


def test_left_out_fields_take_the_runs_settings_and_max_tokens_is_capped():
    request = parse_completion({"model": "a", "prompt": "x"}, 50)
    assert completion_settings(request, Settings(length=60, temperature=0.7), 50, 50) == Settings(length=50, temperature=0.7)
    assert completion_settings(request, Settings(length=20), 50, 50).length == 20


def test_a_run_setting_that_clashes_names_it():
    request = parse_completion({"model": "a", "prompt": "x", "max_tokens": 3}, 50)
    with pytest.raises(APIError, match=r"the run's generate.min_length 5 is more than max_tokens 3"):
        completion_settings(request, Settings(min_length=5), 50, 50)


@pytest.mark.parametrize("body, message", [
    (b"{", "not valid JSON"),
    (b"[1]", "must be a JSON object, got an array"),
    (b'{"a": NaN}', "not valid JSON"),
    (b"[" * 100_000, "not valid JSON"),
])
def test_a_body_that_is_not_a_json_object(body, message):
    with pytest.raises(APIError, match=message) as caught:
        parse_json(body)
    assert caught.value.status == 400 and caught.value.code == "invalid_json"


def test_suggest_body():
    assert parse_suggest({"model": "a", "text": "the cat"}) == ("a", "the cat", 10)
    with pytest.raises(APIError, match="k must be in") as caught:
        parse_suggest({"model": "a", "text": "the", "k": 0})
    assert caught.value.body() == {"error": {"message": "k must be in [1, 100], got 0", "type": "invalid_request_error",
                                             "param": "k", "code": "invalid_value"}}


def test_stop_strings_are_cut_and_a_possible_start_of_one_is_held_back():
    cut = StopCut(["the end", "!"])
    assert cut.feed("once upon", None) == "once upon"
    assert cut.feed(" a time, the", None) == " a time, "  # "the" may begin "the end"
    assert cut.feed(" dog", None) == "the dog"  # it did not
    assert cut.feed(" said the en", None) == " said "
    assert cut.feed("d of it", "stop") == ""  # the stop string and what followed it in its piece are dropped


def test_text_is_whole_when_no_stop_string_ends_it():
    cut = StopCut(["the end"])
    assert cut.feed("and the", None) == "and "
    assert cut.feed(" e", "length") == "the e"  # finished by length: what was held back is sent
    assert StopCut(["x"]).feed("a\nb\n", "stop") == "a\nb\n"  # stopped by a newline count, not a stop string
    assert StopCut([]).feed("abc", None) == "abc"


def test_a_chunk_is_one_server_sent_event_of_openais_chunk_object():
    write = ChunkWriter("cmpl-1", 7, 'run "a"', 3)
    for text, finish in [("line\n\"quoted\" é", None), ("", "stop")]:
        data = write(2, text, finish).decode()
        assert data.startswith("data: ") and data.endswith("\n\n") and "\n" not in data[:-2]
        assert json.loads(data[6:]) == {"id": "cmpl-1", "object": "text_completion", "created": 7, "model": 'run "a"',
                                        "seed": 3, "choices": [{"text": text, "index": 2, "logprobs": None,
                                                                "finish_reason": finish}]}
