"""The docs' HTTP reference is written from the app and protocol.py: every route, its methods and whether the API
key guards it as the app really does; every request field protocol.py accepts, documented."""
from __future__ import annotations

from starlette.testclient import TestClient

from lstm_textgen.serve import chat, protocol, tools
from lstm_textgen.serve.app import build_app
from lstm_textgen.serve.reference import (CHAT_OWN, COMPLETION_OWN, DETOKENIZE_OWN, INSPECT_OWN, SUGGEST_OWN,
                                          TOKENIZE_OWN, http_markdown, route_rows)


def test_every_field_protocol_accepts_is_documented_and_no_other():
    assert set(COMPLETION_OWN) == (protocol.COMPLETION_FIELDS - set(protocol.SETTINGS) - {protocol.STOP, protocol.LOGIT_BIAS}
                                   - set(protocol.NEUTRAL))
    assert set(SUGGEST_OWN) == protocol.SUGGEST_FIELDS
    assert set(CHAT_OWN) == chat.CHAT_FIELDS - protocol.COMPLETION_FIELDS - set(chat.CHAT_NEUTRAL) | {"logprobs"}
    text = http_markdown()
    for name in (*protocol.COMPLETION_FIELDS, *protocol.SUGGEST_FIELDS, *chat.CHAT_FIELDS, *TOKENIZE_OWN,
                 *DETOKENIZE_OWN, *INSPECT_OWN):
        assert f"| `{name}` |" in text, name


def test_the_tokenizer_routes_take_the_fields_the_reference_lists():
    """A body with every documented field is accepted; any other field is refused by name."""
    body = {"model": "run", "prompt": "the", "add_special_tokens": False, "return_token_strs": True}
    assert set(body) == set(TOKENIZE_OWN) and tools.parse_tokenize(body) == ("run", "the", True)
    assert set(DETOKENIZE_OWN) == {"model", "tokens"} and tools.parse_detokenize({"tokens": [2]}) == (None, [2])
    inspected = {"model": "run", "text": "the", "layer": 1, "units": [0]}
    assert set(inspected) == set(INSPECT_OWN) and tools.parse_inspect(inspected) == ("run", "the", [1], [0])


def test_the_settings_fields_carry_their_declared_range_and_the_runs_default():
    rows = {line.split(" | ")[0].strip("| `"): line for line in http_markdown().splitlines() if line.startswith("| `")}
    assert "| number | (0, 1] |" in rows["top_p"].replace("\\", "")
    assert "the run's `generate.length`" in rows["max_tokens"] and "--max-tokens-cap" in rows["max_tokens"]
    assert rows["best_of"].endswith("| null, `1` |")


def test_the_route_table_is_the_apps_routes_and_the_key_column_is_what_the_app_enforces():
    app = build_app({}, "secret", protocol.DEFAULT_MAX_TOKENS_CAP)
    rows = {row[0].strip("`"): row for row in route_rows(app)}
    assert set(rows) == {route.path_format for route in app.routes}
    with TestClient(app) as client:
        for path, (_, methods, guarded, what) in rows.items():
            assert what, path  # each handler says what it does
            method = methods.split(", ")[0]
            reply = client.request(method, path.replace("{model}", "x"), json={})
            assert (reply.status_code == 401) == (guarded == "yes"), (path, reply.status_code)
