"""Chat for a base model: OpenAI's /v1/chat/completions messages checked, rendered into one prompt by the run's
chat template (a Jinja2 string, generate.chat_template, as llama.cpp and vLLM take one; DEFAULT_TEMPLATE when it
is null), the turn end the answer stops at, and the chat.completion objects and chunks that go back."""
from __future__ import annotations

import functools
import json

from lstm_textgen.serve import protocol
from lstm_textgen.serve.protocol import MAX_PROMPT_CHARS, APIError, Completion
from lstm_textgen.serve.replies import Shape, Token

# Each turn as "role:" on a line, the text, a blank line: the shape of a play or a transcript, which base models
# trained on such text continue; the answer ends where the model starts a new turn (a blank line).
DEFAULT_TEMPLATE = ("{% for message in messages %}{{ message.role }}:\n{{ message.content }}\n\n{% endfor %}"
                    "{% if add_generation_prompt %}assistant:\n{% endif %}")
ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_MESSAGES = 1000
MAX_CHAT_CHARS = 100_000  # all messages' text; the prompt sent is the rendered conversation's last 10,000 characters
# OpenAI chat fields this server has no use for: accepted only at the value that changes nothing
CHAT_NEUTRAL = {"tools": (None, []), "tool_choice": (None, "none", "auto"), "parallel_tool_calls": (None, True, False),
                "response_format": (None, {"type": "text"})}
MAX_TOP_LOGPROBS = 20  # as OpenAI's chat: top_logprobs in [0, 20]
CHAT_FIELDS = ((protocol.COMPLETION_FIELDS - {"prompt", "echo", *protocol.NEUTRAL})
               | {"messages", "max_completion_tokens", "top_logprobs", *CHAT_NEUTRAL})


def parse_chat(body: dict, max_tokens_cap: int) -> tuple[Completion, list[dict]]:
    """Check every field of a /v1/chat/completions body: the request as a completion (its prompt made later,
    from the run's template) and the messages as {"role", "content"}."""
    protocol.known_fields(body, CHAT_FIELDS)
    for name, allowed in CHAT_NEUTRAL.items():
        if name in body and body[name] not in allowed:
            raise APIError(400, f"{name} is not supported by this server; leave it out", name, "unsupported_value")
    messages = _messages(body.get("messages"))
    rest = {name: value for name, value in body.items() if name not in ("messages", *CHAT_NEUTRAL)}
    if rest.get("max_completion_tokens") is not None:
        if rest.get("max_tokens") is not None:
            raise APIError(400, "send max_completion_tokens or max_tokens, not both", "max_completion_tokens",
                           "invalid_value")
        rest["max_tokens"] = rest["max_completion_tokens"]
    rest.pop("max_completion_tokens", None)
    chat = protocol.parse_request(rest, max_tokens_cap, [""])
    top = protocol.integer(body, "top_logprobs", 0, MAX_TOP_LOGPROBS, default=None)
    if protocol.boolean(body, "logprobs"):
        chat.logprobs = top or 0
    elif top is not None:
        raise APIError(400, "top_logprobs needs logprobs: true", "top_logprobs", "invalid_value")
    return chat, messages


def _messages(value) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise APIError(400, f"messages must be a non-empty list of messages, got {protocol.json_type(value)}",
                       "messages", "invalid_type")
    if len(value) > MAX_MESSAGES:
        raise APIError(400, f"messages may hold at most {MAX_MESSAGES:,} messages, got {len(value):,}", "messages",
                       "invalid_value")
    messages = [_message(message, f"messages[{i}]") for i, message in enumerate(value)]
    if sum(len(m["content"]) for m in messages) > MAX_CHAT_CHARS:
        raise APIError(400, f"the messages hold more than {MAX_CHAT_CHARS:,} characters; send the latest turns",
                       "messages", "invalid_value")
    return messages


def _message(message, where: str) -> dict:
    if not isinstance(message, dict):
        raise APIError(400, f"{where} must be an object with role and content, got {protocol.json_type(message)}",
                       where, "invalid_type")
    unknown = set(message) - {"role", "content", "name"}
    if unknown:
        raise APIError(400, f"{where} has a field this server does not take: {sorted(unknown)[0]}", where,
                       "unknown_field")
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise APIError(400, f"{where}.role must be one of {', '.join(ROLES)}, got {protocol.json_type(role)}",
                       f"{where}.role", "invalid_value")
    if isinstance(content, list):  # the content parts form: text parts only
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                   for p in content):
            raise APIError(400, f"{where}.content may hold only text parts ({{\"type\": \"text\", \"text\": ...}})",
                           f"{where}.content", "invalid_value")
        content = "".join(p["text"] for p in content)
    if not isinstance(content, str):
        raise APIError(400, f"{where}.content must be a string, got {protocol.json_type(content)}",
                       f"{where}.content", "invalid_type")
    return {"role": role, "content": content}


class ChatTemplate:
    """A run's chat template, compiled once in Jinja2's sandbox: the conversation as one prompt, and the text that
    ends an assistant turn (where the answer stops)."""

    def __init__(self, source: str | None):
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(keep_trailing_newline=True)
        environment.globals["raise_exception"] = _raise  # as Hugging Face's templates call it
        self.template = environment.from_string(source or DEFAULT_TEMPLATE)
        turn = self.render([{"role": "user", "content": "\x01"}, {"role": "assistant", "content": "\x02"}], False)
        end = turn.rsplit("\x02", 1)[-1]
        self.stops = [end] if end.strip(" ") else []

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The prompt: the last MAX_PROMPT_CHARS characters of the rendered conversation."""
        try:
            text = self.template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                        bos_token="", eos_token="")
        except Exception as e:  # the template's own error (raise_exception, an undefined name, recursion)
            raise APIError(400, f"the run's chat template failed on these messages: {type(e).__name__}: "
                                f"{str(e)[:200]}", "messages", "chat_template_error") from None
        return text[-MAX_PROMPT_CHARS:]


@functools.lru_cache(maxsize=64)
def template(source: str | None) -> ChatTemplate:
    return ChatTemplate(source)


def _raise(message: str):
    raise ValueError(message)


def chat_object(ident: str, created: int, model: str, choices: list[tuple[str, str, dict | None]], usage: dict,
                seed: int) -> dict:
    """A whole /v1/chat/completions answer; seed (our own field) repeats the request exactly."""
    return {"id": ident, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": logprobs,
                         "finish_reason": finish} for i, (text, finish, logprobs) in enumerate(choices)],
            "usage": usage, "seed": seed}


def chat_logprobs(tokens: list[Token]) -> dict:
    """OpenAI's chat logprobs: each token with its log-probability, UTF-8 bytes and the likeliest alternatives."""
    return {"content": [{**_entry(t.text, t.logprob), "top_logprobs": [_entry(text, lp) for text, lp in t.top]}
                        for t in tokens], "refusal": None}


def _entry(text: str, logprob: float) -> dict:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


class ChatChunkWriter:
    """One streamed piece of one choice as a chat.completion.chunk: the first of each choice says the role, the
    last has an empty delta and the finish reason."""

    def __init__(self, ident: str, created: int, model: str, seed: int):
        self.head = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                     "seed": seed}
        self.started: set[int] = set()

    def __call__(self, index: int, text: str, finish: str | None, tokens: list[Token] | None = None) -> bytes:
        delta = {} if not text and finish else {"content": text}
        if index not in self.started:
            self.started.add(index)
            delta = {"role": "assistant", "content": text}
        logprobs = None if tokens is None else chat_logprobs(tokens)
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return f"data: {json.dumps({**self.head, 'choices': [choice]}, ensure_ascii=False)}\n\n".encode()


CHAT = Shape("chatcmpl", "chat.completion.chunk", ChatChunkWriter, chat_object, chat_logprobs)
