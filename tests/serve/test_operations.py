"""Operating `serve`: /health and /metrics without the API key, the metrics counting what the server did, one
access-log line per request, and CORS only for the --cors-origin origins."""
from __future__ import annotations

import io
import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from lstm_textgen.errors import TextgenError
from lstm_textgen.serve.app import build_app
from lstm_textgen.serve.operations import check_origin, log_line
from lstm_textgen.serve.protocol import DEFAULT_MAX_TOKENS_CAP

from helpers import running_server

ORIGIN = "https://example.com"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


@pytest.fixture(scope="module")
def server(tiny_run):
    """A server with a key and one CORS origin, its access log read from a string."""
    log = io.StringIO()
    with running_server([tiny_run], api_key="k3y", cors_origins=[ORIGIN], log_stream=log,
                        max_tokens_cap=100_000) as (url, served):
        yield url, log, served["run"]


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server[0], timeout=30, headers={"Authorization": "Bearer k3y"}) as client:
        yield client


def samples(text: str) -> dict[tuple, float]:
    """(sample name, its labels sorted) -> value, from Prometheus' text format."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize("origin, expected", [("https://example.com", "https://example.com"),
                                              ("http://LocalHost:3000", "http://localhost:3000"),
                                              ("http://[::1]:8080", "http://[::1]:8080"), ("*", "*")])
def test_an_origin_is_scheme_host_and_port(origin, expected):
    assert check_origin(origin) == expected


@pytest.mark.parametrize("origin, fragment", [("example.com", "scheme://host[:port]"),
                                              ("https://example.com/", "without the path"),
                                              ("https://example.com/app", "without the path"),
                                              ("https://exa mple.com", "not an origin"), ("", "not an origin"),
                                              ("https://example.com:port", "not an origin")])
def test_anything_else_is_refused_in_one_line(origin, fragment):
    with pytest.raises(TextgenError, match="--cors-origin") as error:
        check_origin(origin)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_a_log_line_is_one_line_whatever_the_path():
    text = log_line("text", "GET", "/v1/models/a b\nforged 200", 404, None, 1.25)
    assert "\n" not in text and text.endswith(" GET /v1/models/a%20b%0Aforged%20200 404 - 1.2ms")
    record = json.loads(log_line("json", "POST", "/v1/completions", 200, 7, 12.345))
    assert {k: record[k] for k in ("method", "path", "status", "tokens", "ms")} == {
        "method": "POST", "path": "/v1/completions", "status": 200, "tokens": 7, "ms": 12.3}


def test_health_and_metrics_need_no_key_where_the_api_does(server):
    url = server[0]
    health = httpx.get(url + "/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    metrics = httpx.get(url + "/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert "lstm_textgen_batch_rows" in metrics.text
    assert httpx.get(url + "/v1/models").status_code == 401


def test_health_is_503_while_starting_and_stopping():
    app = build_app({}, None, DEFAULT_MAX_TOKENS_CAP)
    client = TestClient(app)  # not started: the lifespan has not run
    assert (client.get("/health").status_code, client.get("/health").json()) == (503, {"status": "starting"})
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok"}
        app.state.phase = "stopping"  # as the server sets it when it begins to stop
        reply = client.get("/health")
        assert (reply.status_code, reply.json()) == (503, {"status": "stopping"})


def test_metrics_count_requests_tokens_and_first_tokens(server, http):
    before = samples(http.get("/metrics").text)
    reply = http.post("/v1/completions", json={"model": "run", "prompt": "the cat", "max_tokens": 9, "n": 2})
    assert reply.status_code == 200
    assert http.post("/v1/completions", json={"model": "run", "prompt": "the", "top_p": 7}).status_code == 400
    after = samples(http.get("/metrics").text)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)
    assert grew("lstm_textgen_requests_total", route="/v1/completions", status="200") == 1
    assert grew("lstm_textgen_requests_total", route="/v1/completions", status="400") == 1
    assert grew("lstm_textgen_generated_tokens_total", model="run") == reply.json()["usage"]["completion_tokens"] == 18
    assert grew("lstm_textgen_time_to_first_token_seconds_count", model="run") == 1
    assert grew("lstm_textgen_request_duration_seconds_count", route="/v1/completions") == 2
    assert after[("lstm_textgen_batch_rows", (("model", "run"),))] == 0


def test_one_series_per_route_not_per_path(http):
    for name in ("a", "b", "c"):
        http.get(f"/v1/models/{name}")
    routes = {labels for (name, labels) in samples(http.get("/metrics").text)
              if name == "lstm_textgen_requests_total"}
    assert (("route", "/v1/models/{model}"), ("status", "404")) in routes
    assert not any("/v1/models/a" == dict(labels)["route"] for labels in routes)


def test_the_batch_gauge_reads_the_rows_being_generated(http):
    body = {"model": "run", "prompt": "the", "max_tokens": 100_000, "n": 3, "stream": True}
    with http.stream("POST", "/v1/completions", json=body) as reply:
        lines = reply.iter_lines()  # kept: a closed iterator closes the stream, and the rows go
        assert next(lines).startswith("data: ")
        rows = samples(http.get("/metrics").text)[("lstm_textgen_batch_rows", (("model", "run"),))]
    assert rows == 3


def test_one_access_log_line_per_request(server, http):
    log = server[1]
    log.seek(0, io.SEEK_END)
    start = log.tell()
    http.post("/v1/completions", json={"model": "run", "prompt": "the dog", "max_tokens": 4})
    http.get("/v2/nothing")
    httpx.get(server[0] + "/health")
    deadline = time.monotonic() + 10  # a line is written just after its answer is sent, on the server's thread
    while len(lines := log.getvalue()[start:].splitlines()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [line.split()[1:5] for line in lines] == [["POST", "/v1/completions", "200", "4"],
                                                     ["GET", "/v2/nothing", "404", "-"],
                                                     ["GET", "/health", "200", "-"]]
    assert all(line.endswith("ms") for line in lines)


def test_a_preflight_from_an_allowed_origin_is_answered(server, http):
    reply = httpx.options(server[0] + "/v1/completions", headers=PREFLIGHT)
    assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == ORIGIN
    allowed = reply.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed and "POST" in reply.headers[
        "access-control-allow-methods"]
    answer = http.get("/v1/models", headers={"Origin": ORIGIN})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == ORIGIN


def test_a_preflight_from_another_origin_is_a_json_400_and_the_server_serves_on(server, http):
    reply = httpx.options(server[0] + "/v1/completions", headers=PREFLIGHT | {"Origin": "https://evil.example"})
    assert reply.status_code == 400 and "access-control-allow-origin" not in reply.headers
    error = reply.json()["error"]
    assert error["code"] == "cors_refused" and "origin" in error["message"]
    assert "access-control-allow-origin" not in http.get("/v1/models", headers={"Origin": "https://evil.example"}
                                                         ).headers
    assert http.post("/v1/completions", json={"model": "run", "prompt": "the", "max_tokens": 2}).status_code == 200


def test_without_cors_origins_a_preflight_gets_no_cors_headers(tiny_run):
    with running_server([tiny_run], log_stream=io.StringIO()) as (url, _):
        reply = httpx.options(url + "/v1/completions", headers=PREFLIGHT)
        assert reply.status_code == 405 and reply.json()["error"]["code"] == "method_not_allowed"
        assert not any(name.startswith("access-control-") for name in reply.headers)
        assert "access-control-allow-origin" not in httpx.get(url + "/v1/models", headers={"Origin": ORIGIN}).headers

