"""Beyond completions: vLLM's tokenizer routes (what /tokenize and /detokenize take, what /tokenizer_info says),
a prompt given back by echo and scored as `evaluate` scores a text, prompts of token ids checked against a run's
vocabulary, what /v1/inspect takes, and whole-word suggestions. app.py routes to them."""
from __future__ import annotations

from lstm_textgen.generation.evaluate import token_logprobs
from lstm_textgen.generation.interactive import Continuation
from lstm_textgen.serve import protocol
from lstm_textgen.serve.chat import DEFAULT_TEMPLATE
from lstm_textgen.serve.protocol import APIError
from lstm_textgen.serve.replies import Token
from lstm_textgen.config.values import shown
from lstm_textgen.run.rundir import Run
from lstm_textgen.text.tokenizer import PAD, UNK


def parse_inspect(body: dict) -> tuple[str, str, list[int] | None, list[int] | None]:
    """model, text, layer and units of a /v1/inspect body: text at most protocol.MAX_PROMPT_CHARS characters; layer a
    1-based layer number or a list of them; units a list of unit indices (each checked against the run later)."""
    protocol.known_fields(body, {"model", "text", "layer", "units"})
    text = body.get("text")
    if not isinstance(text, str):
        raise protocol.APIError(400, f"text must be a string, got {protocol.json_type(text)}", "text", "invalid_type")
    protocol.prompt_length(text, "text")
    layers, units = body.get("layer"), body.get("units")
    layers = [layers] if protocol.is_int(layers) else layers
    for name, value in (("layer", layers), ("units", units)):
        if value is not None and not (isinstance(value, list) and value and len(value) <= 100_000
                                      and all(protocol.is_int(v) for v in value)):
            raise protocol.APIError(400, f"{name} must be {'a layer number or ' if name == 'layer' else ''}a non-empty list of "
                                f"integers, got {protocol.json_type(value)}", name, "invalid_type")
    return protocol.model_field(body), text, layers, units


def parse_tokenize(body: dict) -> tuple[str | None, str, bool]:
    """model (optional), prompt and return_token_strs of a /tokenize body (vLLM's)."""
    protocol.known_fields(body, {"model", "prompt", "add_special_tokens", "return_token_strs"})
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise protocol.APIError(400, f"prompt must be a string, got {protocol.json_type(prompt)}", "prompt", "invalid_type")
    protocol.boolean(body, "add_special_tokens")  # a run has no special tokens to add: either value gives the same ids
    return optional_model(body), prompt, protocol.boolean(body, "return_token_strs")


def parse_detokenize(body: dict) -> tuple[str | None, list[int]]:
    """model (optional) and tokens of a /detokenize body (vLLM's)."""
    protocol.known_fields(body, {"model", "tokens"})
    tokens = body.get("tokens")
    if not isinstance(tokens, list) or not all(protocol.is_int(token) for token in tokens):
        raise protocol.APIError(400, f"tokens must be a list of token ids, got {protocol.json_type(tokens)}", "tokens", "invalid_type")
    if len(tokens) > protocol.MAX_PROMPT_CHARS:
        raise protocol.APIError(400, f"tokens may hold at most {protocol.MAX_PROMPT_CHARS:,} ids, got {len(tokens):,}", "tokens",
                       "invalid_value")
    return optional_model(body), tokens


def optional_model(body: dict) -> str | None:
    return None if body.get("model") is None else protocol.model_field(body)


def check_ids(run: Run, ids: list[int], param: str) -> None:
    vocab_size = run.tokenizer.vocab_size
    wrong = next((i for i in ids if not 0 < i < vocab_size), None)
    if wrong is not None:
        raise APIError(400, f"{param} holds the token id {shown(wrong)}; this run's ids are 1 to {vocab_size - 1:,} "
                            f"(0 is {PAD}, which the model never reads)", param, "invalid_value")


def echo(run: Run, stepper, ids: list[int], logprobs: int | None) -> tuple[str, list[Token]]:
    """A prompt as echo gives it back: its text as generation writes its tokens, and with logprobs each token
    scored as `evaluate` scores a text (the first has no score: nothing predicts it)."""
    detok = run.tokenizer.detokenizer()
    if logprobs is None:
        return "".join(detok.piece(i) for i in ids), []
    chosen, top_ids, top_values = token_logprobs(run, ids, stepper, logprobs)
    tokens, offset = [], 0
    for t, token in enumerate(ids):
        top = None if t == 0 else [(detok.peek(int(i)), float(v)) for i, v in zip(top_ids[t - 1], top_values[t - 1])]
        piece = detok.piece(token)
        tokens.append(Token(piece, None if t == 0 else float(chosen[t - 1]), top, offset))
        offset += len(piece)
    return "".join(token.text for token in tokens), tokens


def tokenizer_info(name: str, run: Run) -> dict:
    """GET /tokenizer_info's answer, as vLLM's: the run's tokenizer, with no end-of-text or start token."""
    tokenizer = run.tokenizer
    return {"model": name, "tokenizer_class": "lstm-textgen", "level": tokenizer.level, "lowercase": tokenizer.lowercase,
            "vocab_size": tokenizer.vocab_size, "model_max_length": protocol.MAX_PROMPT_CHARS, "eos_token": None,
            "bos_token": None, "pad_token": PAD, "unk_token": UNK,
            "chat_template": run.config.generate.chat_template or DEFAULT_TEMPLATE}


def word_choices(run: Run, text: str, k: int) -> list[dict]:
    """/v1/suggest where a token may be part of a word (bpe): the k likeliest next words after text, each
    completed from its tokens (interactive.Continuation)."""
    return [{"token": choice.text, "probability": choice.probability, "text": choice.text}
            for choice in Continuation(run, text).choices(k)]
