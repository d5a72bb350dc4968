"""The wire format of `serve`, coming in: request bodies checked field by field (each bad field a 4xx error in
OpenAI's shape naming it), and a completion's settings built on the run's generate: section. What goes back is
in replies.py."""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import typing
from dataclasses import dataclass

from lstm_textgen.config import GenerateConfig
from lstm_textgen.config.generation import MAX_LOGIT_BIAS
from lstm_textgen.config.setting import declared, policy
from lstm_textgen.errors import ConfigError
from lstm_textgen.usertext import text_problem
from lstm_textgen.config.values import shown

MAX_BODY_BYTES = 1 << 20  # a request is a few settings and a prompt; more is refused unread
MAX_PROMPT_CHARS = 10_000  # a prompt is prefilled one token per step, holding up the whole batch meanwhile
MAX_ROWS = 64  # prompts x n: the rows one request may add to the batch
MAX_STOPS, MAX_STOP_CHARS = 4, 200  # as OpenAI: at most 4 stop strings
MAX_SUGGESTIONS = 100
DEFAULT_MAX_TOKENS_CAP = 2048  # serve --max-tokens: the largest max_tokens a request may ask for

# JSON field -> the GenerateConfig number field it sets, as each declares (the rest come from the run's generate:);
# stop, a list of strings, has checks of its own
SETTINGS = {rule.http: name for name, kind, _, rule in declared(GenerateConfig) if rule.http and kind in (int, float)}
STOP = policy(GenerateConfig, "stop").http
LOGIT_BIAS = policy(GenerateConfig, "logit_bias").http  # token id (a JSON key, so a string) -> bias
# OpenAI fields this server has no use for: accepted only at the value that changes nothing
NEUTRAL = {"best_of": (None, 1), "suffix": (None,)}
MAX_LOGPROBS = 5  # as OpenAI's legacy completions: the chosen token and at most 5 alternatives
COMPLETION_FIELDS = {"model", "prompt", "n", "seed", STOP, LOGIT_BIAS, "stream", "stream_options", "user", "echo",
                     "logprobs", *SETTINGS, *NEUTRAL}
SUGGEST_FIELDS = {"model", "text", "k"}
_BOUNDS = {f.name: f.metadata.get("bounds") for f in dataclasses.fields(GenerateConfig)}
_TYPES = typing.get_type_hints(GenerateConfig)


class APIError(Exception):
    """A request the server refuses: the HTTP status and OpenAI's error object."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass
class Completion:
    """A checked /v1/completions request."""
    model: str
    prompts: list[str | list[int]]  # texts, or token ids (the run's vocabulary checks them: app._encode)
    overrides: dict  # GenerateConfig field -> value, for the fields the request gave
    n: int = 1
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    logprobs: int | None = None  # the alternatives listed beside each token's log-probability; None: no scores
    echo: bool = False  # the prompt's tokens come back before the completion (scored, with logprobs)


def parse_json(body: bytes) -> dict:
    """The request body as a JSON object whose every string is plain text, or a 400 that says why not."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise APIError(400, f"the request body is not UTF-8 (invalid byte 0x{body[e.start]:02x} at byte {e.start}); "
                            "send JSON encoded as UTF-8", code="invalid_encoding") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:  # RecursionError: [[[[...]]]] nested past Python's stack
        raise APIError(400, f"the request body is not valid JSON ({shown(str(e))}); send one JSON object",
                       code="invalid_json") from None
    if not isinstance(value, dict):
        raise APIError(400, f"the request body must be a JSON object, got {json_type(value)}", code="invalid_json")
    _check_strings(value, "")
    return value


def _check_strings(value, where: str) -> None:
    """Refuse a lone surrogate (JSON's \\ud800) or a control character (ESC, NUL, ...; line ends and tabs are
    text) in any string of the body, keys included: none may reach the model, a log or an error message."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        problem = text_problem(key) if isinstance(key, str) else None
        if problem is not None:
            raise APIError(400, f"a field name holds {problem}; send plain UTF-8 text", code="invalid_text")
        name = f"{where}[{key}]" if isinstance(value, list) else f"{where}.{key}" if where else key
        problem = text_problem(item) if isinstance(item, str) else None
        if problem is not None:
            raise APIError(400, f"{name} holds {problem}; send plain UTF-8 text", name, "invalid_text")
        _check_strings(item, name)


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_completion(body: dict, max_tokens_cap: int) -> Completion:
    """Check every field of a /v1/completions body; settings are checked against GenerateConfig's ranges."""
    known_fields(body, COMPLETION_FIELDS)
    completion = parse_request(body, max_tokens_cap, _prompts(body.get("prompt")))
    completion.logprobs = integer(body, "logprobs", 0, MAX_LOGPROBS, default=None)
    completion.echo = boolean(body, "echo")
    return completion


def parse_request(body: dict, max_tokens_cap: int, prompts: list[str]) -> Completion:
    """The fields a completion and a chat completion share: the settings, n, seed, user and streaming."""
    overrides = {}
    for name, field in SETTINGS.items():
        if body.get(name) is not None:
            overrides[field] = _setting(name, field, body[name])
    if overrides.get("length", 0) > max_tokens_cap:
        raise APIError(400, f"max_tokens must be <= {max_tokens_cap:,} on this server, got {shown(body['max_tokens'])}",
                       "max_tokens", "invalid_value")
    if body.get(STOP) is not None:
        overrides["stop"] = _stops(body[STOP])
    if body.get(LOGIT_BIAS) is not None:
        overrides["logit_bias"] = _logit_bias(body[LOGIT_BIAS])
    for name, allowed in NEUTRAL.items():
        if body.get(name) not in allowed:
            raise APIError(400, f"{name} is not supported by this server; leave it out", name, "unsupported_value")
    n = integer(body, "n", 1, max(1, MAX_ROWS // len(prompts)), default=1)
    seed = integer(body, "seed", 0, 2**63 - 1, default=None)
    _string(body, "user", 1000)
    stream, options = boolean(body, "stream"), body.get("stream_options")
    if options is not None and (not stream or not isinstance(options, dict) or set(options) - {"include_usage"}):
        raise APIError(400, 'stream_options must be {"include_usage": true|false}, with stream true',
                       "stream_options", "invalid_value")
    return Completion(model_field(body), prompts, overrides, n, seed, stream,
                      boolean(options or {}, "include_usage", "stream_options.include_usage"))


def completion_settings(request: Completion, base: GenerateConfig, max_tokens_cap: int,
                        vocab_size: int) -> GenerateConfig:
    """The run's generate: settings with the request's on top (max_tokens defaults to the run's length, capped),
    for a run of vocab_size tokens (logit_bias names token ids)."""
    overrides = {"length": min(base.length, max_tokens_cap)} | request.overrides
    fields = {field: name for name, field in SETTINGS.items()} | {"stop": STOP, "logit_bias": LOGIT_BIAS}
    settings = dataclasses.replace(base, **overrides)
    key = (lambda name: fields.get(name) or f"the run's generate.{name}")
    problem = settings.vocabulary_problem(vocab_size, key)
    if problem:
        raise APIError(400, problem, LOGIT_BIAS, "invalid_value")
    try:
        return settings.check(key)
    except ConfigError as e:
        raise APIError(400, str(e), code="invalid_value") from None


def parse_suggest(body: dict) -> tuple[str, str, int]:
    """model, text and k of a /v1/suggest body."""
    known_fields(body, SUGGEST_FIELDS)
    text = body.get("text")
    if not isinstance(text, str):
        raise APIError(400, f"text must be a string, got {json_type(text)}", "text", "invalid_type")
    prompt_length(text, "text")
    return model_field(body), text, integer(body, "k", 1, MAX_SUGGESTIONS, default=10)


def known_fields(body: dict, known: set[str]) -> None:
    for name in body:
        if name not in known:
            near = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise APIError(400, f"unknown field {shown(name)}{hint}", name, "unknown_field")


def model_field(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise APIError(400, "model must name a served run (GET /v1/models lists them)", "model", "invalid_type")
    return model


def _prompts(value) -> list[str | list[int]]:
    """OpenAI's four forms of prompt: a string, a list of strings, a list of token ids, a list of such lists."""
    if isinstance(value, list) and value and all(is_int(token) for token in value):
        value = [value]  # one prompt of token ids
    prompts = [value] if isinstance(value, str) else value
    if not isinstance(prompts, list) or not prompts or not all(
            isinstance(p, str) or (isinstance(p, list) and p and all(is_int(t) for t in p)) for p in prompts):
        raise APIError(400, "prompt must be a string, a non-empty list of strings, a list of token ids or a list of "
                            f"such lists, got {json_type(value)}", "prompt", "invalid_type")
    if len(prompts) > MAX_ROWS:
        raise APIError(400, f"prompt may list at most {MAX_ROWS} prompts, got {len(prompts)}", "prompt",
                       "invalid_value")
    for prompt in prompts:
        if isinstance(prompt, list) and len(prompt) > MAX_PROMPT_CHARS:
            raise APIError(400, f"a prompt of token ids may hold at most {MAX_PROMPT_CHARS:,} tokens, got "
                                f"{len(prompt):,}; send the end of the text", "prompt", "invalid_value")
        if isinstance(prompt, str):
            prompt_length(prompt, "prompt")
    return prompts


def prompt_length(text: str, name: str) -> None:
    if len(text) > MAX_PROMPT_CHARS:
        raise APIError(400, f"{name} must be at most {MAX_PROMPT_CHARS:,} characters, got {len(text):,}; "
                            "send the end of the text", name, "invalid_value")


def _setting(name: str, field: str, value):
    """A settings field: its JSON type, then the range GenerateConfig declares for it."""
    if _TYPES[field] is int and not is_int(value):
        raise APIError(400, f"{name} must be an integer, got {json_type(value)}", name, "invalid_type")
    _number(name, value, _BOUNDS[field], name)
    return value


def _stops(value) -> list[str]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise APIError(400, f"stop must be a string or a list of strings, got {json_type(value)}", "stop",
                       "invalid_type")
    if len(stops) > MAX_STOPS or any(not s or len(s) > MAX_STOP_CHARS for s in stops):
        raise APIError(400, f"stop must hold at most {MAX_STOPS} non-empty strings of at most {MAX_STOP_CHARS} "
                            "characters", "stop", "invalid_value")
    return stops


def _logit_bias(value) -> dict[int, float]:
    """OpenAI's logit_bias: {"token id": bias}, each bias a number in the range GenerateConfig declares."""
    if not isinstance(value, dict):
        raise APIError(400, f"{LOGIT_BIAS} must be an object of token ids to biases, e.g. {{\"50\": -100}}, got "
                            f"{json_type(value)}", LOGIT_BIAS, "invalid_type")
    if len(value) > MAX_LOGIT_BIAS:
        raise APIError(400, f"{LOGIT_BIAS} may bias at most {MAX_LOGIT_BIAS} tokens, got {len(value):,}", LOGIT_BIAS,
                       "invalid_value")
    bias = {}
    for token, number in value.items():
        if not re.fullmatch(r"[0-9]{1,18}", token):
            raise APIError(400, f"{LOGIT_BIAS} keys must be token ids (integers >= 0, as strings), got {shown(token)}",
                           LOGIT_BIAS, "invalid_value")
        bias[int(token)] = _number(f"{LOGIT_BIAS}[{token}]", number, _BOUNDS["logit_bias"], LOGIT_BIAS)
    return bias


def _number(name: str, value, bounds, param: str) -> float:
    """A JSON number, finite and in bounds (a 400 naming param when not)."""
    if not (is_int(value) or isinstance(value, float)):
        raise APIError(400, f"{name} must be a number, got {json_type(value)}", param, "invalid_type")
    if isinstance(value, float) and not math.isfinite(value):
        raise APIError(400, f"{name} must be a finite number, got {value}", param, "invalid_value")
    problem = bounds.problem(name, value, optional=False)
    if problem:
        raise APIError(400, problem, param, "invalid_value")
    return float(value)


def integer(body: dict, name: str, low: int, high: int, default):
    value = body.get(name)
    if value is None:
        return default
    if not is_int(value):
        raise APIError(400, f"{name} must be an integer, got {json_type(value)}", name, "invalid_type")
    if not low <= value <= high:
        raise APIError(400, f"{name} must be in [{low}, {high:,}], got {shown(value)}", name, "invalid_value")
    return value


def boolean(body: dict, name: str, param: str | None = None) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool) and value is not None:
        raise APIError(400, f"{param or name} must be true or false, got {json_type(value)}", param or name,
                       "invalid_type")
    return bool(value)


def _string(body: dict, name: str, limit: int) -> None:
    value = body.get(name)
    if value is not None and not (isinstance(value, str) and len(value) <= limit):
        raise APIError(400, f"{name} must be a string of at most {limit} characters", name, "invalid_type")


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def json_type(value) -> str:
    """A JSON value's type and a bounded look at it, for an error message."""
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
             dict: "an object", type(None): "null"}
    return f"{names.get(type(value), type(value).__name__)} {shown(value)}" if value is not None else "null"
