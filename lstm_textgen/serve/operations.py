"""What `serve` tells the people who run it, and whom it lets in: the Prometheus metrics (one registry per app, so
two apps in one process never share a counter), the access log (one line per request on stderr, text or JSON,
written when the answer is sent whole: a stream's line comes at its end), and CORS for the --cors-origin values."""
from __future__ import annotations

import json
import re
import sys
import time
from datetime import datetime, timezone
from typing import Callable, TextIO
from urllib.parse import quote

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from lstm_textgen.errors import TextgenError
from lstm_textgen.config.values import shown
from lstm_textgen.serve.protocol import APIError

LOG_FORMATS = ("text", "json")
# scheme://host[:port], as a browser sends its Origin header: no path, no trailing slash
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)"
                     r"(:[0-9]{1,5})?", re.IGNORECASE)
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def check_origin(origin: str) -> str:
    """A --cors-origin value, as the browser's Origin header will spell it (lowercase), or one line saying why not."""
    if origin == "*" or _ORIGIN.fullmatch(origin):
        return origin if origin == "*" else origin.lower()
    hint = " (without the path or the trailing slash)" if re.match(r"[a-z][a-z0-9+.-]*://[^/]+/", origin, re.I) else ""
    raise TextgenError(f"--cors-origin {shown(origin)} is not an origin; give scheme://host[:port]{hint}, "
                       "e.g. https://example.com or http://localhost:3000, or * for any")


class CORS(CORSMiddleware):
    """Starlette's CORSMiddleware, a refused preflight answered with OpenAI's error object rather than plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        error = APIError(400, f"CORS preflight refused: its {refused} is not allowed (the server allows the "
                         "--cors-origin origins, GET and POST, and the headers Authorization and Content-Type)",
                         code="cors_refused")
        headers = {k: v for k, v in response.headers.items() if k.startswith("access-control-") or k == "vary"}
        return JSONResponse(error.body(), status_code=400, headers=headers)


class Metrics:
    """The server's Prometheus metrics in a registry of its own; batch_rows reads each run's batch when scraped."""

    def __init__(self, running_rows: dict[str, Callable[[], int]]):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("lstm_textgen_requests", "HTTP requests answered, by route and status",
                                ["route", "status"], registry=r)
        self.latency = Histogram("lstm_textgen_request_duration_seconds", "Seconds from a request's arrival to the "
                                 "last byte of its answer (a stream's end), by route", ["route"], buckets=_SECONDS,
                                 registry=r)
        self.tokens = Counter("lstm_textgen_generated_tokens", "Tokens generated for completions, by model",
                              ["model"], registry=r)
        self.first_token = Histogram("lstm_textgen_time_to_first_token_seconds", "Seconds from a completion "
                                     "request's arrival to its first generated token, by model", ["model"],
                                     buckets=_SECONDS, registry=r)
        rows = Gauge("lstm_textgen_batch_rows", "Rows in the model's batch now (requests x n being generated)",
                     ["model"], registry=r)
        for model, count in running_rows.items():
            self.tokens.labels(model)  # present at 0 from the start, as Prometheus' rate() wants
            rows.labels(model).set_function(count)

    def timed(self, model: str, started: float, publish: Callable) -> Callable:
        """publish (a Job's listener), observing the time to the job's first token on its way."""
        first = [True]

        def publish_timed(job, events):
            if first[0] and events:
                first[0] = False
                self.first_token.labels(model).observe(time.perf_counter() - started)
            publish(job, events)
        return publish_timed


class AccessLog:
    """ASGI middleware: one line per HTTP request on `stream` (method, path, status, tokens generated, ms), and the
    request counted in the metrics under its route's pattern (so /v1/models/NAME is one series, not one per NAME).

    A completion handler leaves its job in the request's state (request.state.job, request.state.model): its tokens
    are counted when the answer ends."""

    def __init__(self, app, routes: list, metrics: Metrics, log_format: str = "text", stream: TextIO | None = None):
        self.app, self.routes, self.metrics, self.log_format = app, routes, metrics, log_format
        self.stream = stream

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]  # an exception that escapes is answered with 500

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        state = scope.setdefault("state", {})
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.record(scope, status[0], time.perf_counter() - started, state)

    def record(self, scope, status: int, seconds: float, state: dict) -> None:
        route = next((r.path_format for r in self.routes if r.matches(scope)[0] is not Match.NONE), "other")
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        tokens = sum(state["job"].tokens) if "job" in state else None
        if tokens is not None:
            self.metrics.tokens.labels(state["model"]).inc(tokens)
        self.write(log_line(self.log_format, scope["method"], scope["path"], status, tokens, seconds * 1000))

    def write(self, line: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(line + "\n")
        stream.flush()


def log_line(log_format: str, method: str, path: str, status: int, tokens: int | None, ms: float) -> str:
    """One access-log line; the path percent-encoded as sent, so a line is always one line."""
    path = quote(path, safe="/:@!$&'()*+,;=-._~{}")
    when = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if log_format == "json":
        return json.dumps({"time": when, "method": method, "path": path, "status": status, "tokens": tokens,
                           "ms": round(ms, 1)})
    return f"{when} {method} {path} {status} {'-' if tokens is None else tokens} {ms:.1f}ms"
