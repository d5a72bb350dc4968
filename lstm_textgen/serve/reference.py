"""The docs' HTTP API reference, written from the code: the routes from the Starlette app itself (path, methods,
whether the API key guards it, its handler's docstring) and the request fields from protocol.py, the settings
among them read off the generate: section's HTTP declarations. The docs build calls http_markdown()."""
from __future__ import annotations

import inspect

from lstm_textgen.config import GenerateConfig
from lstm_textgen.config.reference import markdown_cell, range_text, yaml_value
from lstm_textgen.config.setting import declared, default_of
from lstm_textgen.serve.app import build_app
from lstm_textgen.serve.chat import CHAT_NEUTRAL, MAX_MESSAGES, MAX_TOP_LOGPROBS, ROLES
from lstm_textgen.serve.protocol import (DEFAULT_MAX_TOKENS_CAP, LOGIT_BIAS, MAX_BODY_BYTES, MAX_LOGIT_BIAS,
                                         MAX_LOGPROBS, MAX_PROMPT_CHARS, MAX_ROWS, MAX_STOP_CHARS, MAX_STOPS, MAX_SUGGESTIONS,
                                         NEUTRAL, SETTINGS, STOP)

# The request fields protocol.py checks itself (the rest are generate: settings or OpenAI's fields kept neutral):
# type and meaning. A test holds these to protocol.py's field sets, so a field added there fails until it is here.
COMPLETION_OWN = {
    "model": ("string", "the served run's name (its folder name; GET /v1/models lists them); required"),
    "prompt": ("string, array of strings, array of token ids, or array of such arrays",
               f"the text to continue, or up to {MAX_ROWS} texts; each at most {MAX_PROMPT_CHARS:,} characters (or "
               "token ids, as POST /tokenize gives them); required"),
    "echo": ("boolean", "true: each choice's text starts with its prompt, written as generation writes its tokens "
                        "(at word level lower-cased, unknown words as <unk>); with logprobs, the prompt's tokens are "
                        "scored too, as evaluate scores a text, the first without a score; false by default"),
    "logprobs": ("integer", f"0 to {MAX_LOGPROBS}: each token's log-probability under the model (before any sampling "
                            "rule) and that many likeliest alternatives, in OpenAI's legacy format (tokens, "
                            "token_logprobs, top_logprobs, text_offset); null by default"),
    "n": ("integer", f"completions per prompt, 1 by default; prompts × n at most {MAX_ROWS}"),
    "seed": ("integer", "the random seed of the first row (row k draws with seed + k, as generate --samples with "
                        "--random-seed); drawn at random and returned when left out"),
    "stream": ("boolean", "true: the text as Server-Sent Events in OpenAI's chunk format, ending with data: [DONE]"),
    "stream_options": ("object", '{"include_usage": true} adds a last chunk with the usage; only with stream'),
    "user": ("string", "accepted and ignored (OpenAI's end-user id), at most 1000 characters"),
}
CHAT_OWN = {
    "messages": ("array of objects", f"the conversation: {{\"role\", \"content\"}} each, role one of {', '.join(ROLES)}; "
                                     f"at most {MAX_MESSAGES:,}, rendered by the run's chat template; required"),
    "max_completion_tokens": ("integer", "the same as max_tokens (send one of the two)"),
    "logprobs": ("boolean", "true: each token's log-probability and top_logprobs alternatives in OpenAI's chat "
                            "format (token, logprob, bytes); false by default"),
    "top_logprobs": ("integer", f"0 to {MAX_TOP_LOGPROBS}: the alternatives listed per token; needs logprobs: true"),
}
TOKENIZE_OWN = {
    "model": ("string", "the served run; may be left out when the server serves one"),
    "prompt": ("string", "the text; required"),
    "add_special_tokens": ("boolean", "accepted; a run has no special tokens, so it changes nothing"),
    "return_token_strs": ("boolean", "true: token_strs, each token's vocabulary entry, beside the ids"),
}
DETOKENIZE_OWN = {
    "model": TOKENIZE_OWN["model"],
    "tokens": ("array of integers", f"token ids of the run, at most {MAX_PROMPT_CHARS:,}; required"),
}
INSPECT_OWN = {
    "model": ("string", "the served run's name; required"),
    "text": ("string", f"the text to read, at most {MAX_PROMPT_CHARS:,} characters; required"),
    "layer": ("integer or array of integers", "only these recurrent layers (1 is the first); all by default"),
    "units": ("array of integers", "only these units of each layer; all by default"),
}
SUGGEST_OWN = {
    "model": COMPLETION_OWN["model"],
    "text": ("string", f"the text so far, at most {MAX_PROMPT_CHARS:,} characters; required"),
    "k": ("integer", f"how many next words, 10 by default, at most {MAX_SUGGESTIONS}"),
}
JSON_TYPES = {int: "integer", float: "number"}


def route_rows(app) -> list[list[str]]:
    """One row per route of the app: path, methods, whether the API key guards it, what it does."""
    rows = []
    for route in app.routes:
        endpoint = route.endpoint
        methods = ", ".join(sorted(route.methods - {"HEAD"})) if route.methods else ""
        doc = inspect.getdoc(endpoint) or ""
        guarded = "self.authorize(request)" in inspect.getsource(endpoint)
        what = markdown_cell(" ".join(doc.split("\n\n")[0].split())).replace("\\`", "`")  # code spans kept
        rows.append([f"`{route.path_format}`", methods, "yes" if guarded else "no", what])
    return rows


def setting_rows() -> list[list[str]]:
    """The completion fields that set a generate: value, read off its declaration (range, help, the run's default)."""
    fields = {name: (kind, field, rule) for name, kind, field, rule in declared(GenerateConfig)}
    rows = []
    for name, setting in SETTINGS.items():
        kind, field, rule = fields[setting]
        default = f"the run's `generate.{setting}` (built in: `{yaml_value(default_of(field))}`)"
        if setting == "length":
            default += ", at most the server's --max-tokens-cap"
        rows.append([f"`{name}`", JSON_TYPES[kind], markdown_cell(range_text(field.metadata.get("bounds"))),
                     f"{markdown_cell(rule.help)}; {default}"])
    stop_rule = fields["stop"][2]
    rows.append([f"`{STOP}`", "string or array of strings", f"at most {MAX_STOPS}, each 1 to {MAX_STOP_CHARS} "
                 "characters", f"{markdown_cell(stop_rule.help)} (the completion ends before it); the run's "
                 "`generate.stop` when left out"])
    bias = fields["logit_bias"]
    rows.append([f"`{LOGIT_BIAS}`", "object", f"at most {MAX_LOGIT_BIAS} entries, each bias in "
                 f"{markdown_cell(range_text(bias[1].metadata.get('bounds')))}", f"{markdown_cell(bias[2].help)}; keys "
                 "are token ids as strings (`{\"50\": -100}`), within the run's vocabulary; the run's "
                 "`generate.logit_bias` when left out"])
    return rows


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def own_rows(fields: dict[str, tuple[str, str]]) -> list[list[str]]:
    return [[f"`{name}`", kind, "", markdown_cell(what)] for name, (kind, what) in fields.items()]


def _neutral(fields: dict) -> list[list[str]]:
    return [[f"`{name}`", ", ".join("null" if v is None else f"`{yaml_value(v)}`" for v in values)]
            for name, values in fields.items()]


def http_markdown() -> str:
    """The HTTP reference as Markdown: the routes, each request's fields, the neutral fields and the limits."""
    app = build_app({}, None, DEFAULT_MAX_TOKENS_CAP)
    neutral = _neutral(NEUTRAL)
    limits = [["request body", f"{MAX_BODY_BYTES:,} bytes (larger: 413)"],
              ["prompt or text", f"{MAX_PROMPT_CHARS:,} characters"],
              ["rows a request adds (prompts × n)", str(MAX_ROWS)],
              ["max_tokens", f"the server's --max-tokens-cap ({DEFAULT_MAX_TOKENS_CAP:,} unless set)"],
              ["stop strings", f"{MAX_STOPS}, each at most {MAX_STOP_CHARS} characters"]]
    fields = ["field", "type", "range", "what"]
    return "\n".join([
        "## Routes", "", *table(["path", "methods", "API key", "what"], route_rows(app)),
        "## POST /v1/completions", "", "Fields of the request body (a JSON object); any other field is refused "
        "with 400, naming the nearest known one.", "",
        *table(fields, own_rows(COMPLETION_OWN) + setting_rows()),
        "OpenAI's fields this server has no use for are accepted only at the values that change nothing:", "",
        *table(["field", "accepted values"], neutral),
        "## POST /v1/chat/completions", "", "The fields of /v1/completions except `prompt`, `echo`, `best_of` and "
        "`suffix`, with these:", "", *table(fields, own_rows(CHAT_OWN)),
        "OpenAI's chat fields this server has no use for are accepted only at the values that change nothing:", "",
        *table(["field", "accepted values"], _neutral(CHAT_NEUTRAL)),
        "## POST /v1/suggest", "", *table(fields, own_rows(SUGGEST_OWN)),
        "## POST /v1/inspect", "", "What `lstm-textgen inspect` records over a text, in the inspection page's "
        "compact form: `tokens`, `surprisal` (bits, of each token's successor), `top` (the five likeliest next "
        "tokens), and per layer each part (gates, candidate, cell, hidden) as base64 bytes, one per token and unit, "
        "each unit scaled over its `lo` to `hi` (`lstm-textgen inspect --json` gives the values whole).", "",
        *table(fields, own_rows(INSPECT_OWN)),
        "## POST /tokenize and POST /detokenize", "", "vLLM's tokenizer routes, as lm-eval's remote tokenizer calls "
        "them: `/tokenize` answers `{\"count\", \"max_model_len\", \"tokens\"}`, `/detokenize` answers "
        "`{\"prompt\"}`; `GET /tokenizer_info` describes the tokenizer (`?model=NAME` where several runs are "
        "served).", "", *table(fields, own_rows(TOKENIZE_OWN)), *table(fields, own_rows(DETOKENIZE_OWN)),
        "## Limits", "", *table(["what", "at most"], limits)])

