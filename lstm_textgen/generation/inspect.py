"""inspect: a run's model read over a text with the numpy stepper, recording per token and layer what the LSTM
computes (the input, forget and output gates, the candidate, the cell and hidden states; a GRU's update and reset
gates, candidate and hidden state), the model's five likeliest next tokens and the real next token's surprisal;
the text's features and the units that follow them best (find units); the JSON lines and the page's data.

The values are the stepper's own, the ones generation computes (tests/generation/test_inspect.py holds them to a
Keras model and to the LSTM identities). The state is carried over the whole text, as generation reads a prompt.
"""
from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.decode import top_logprobs
from lstm_textgen.generation.sample import encode_seed
from lstm_textgen.model.stepper import Stepper, softmax
from lstm_textgen.run.rundir import Run
from lstm_textgen.config.values import shown

MAX_TOKENS = 20_000  # a longer text is refused before it is read: the page would hold 20,000 x units x 6 values
MAX_CHARS = 50 * MAX_TOKENS  # a text longer than this is refused before it is even tokenized
TOP = 5
PARTS = {"LSTM": ("input_gate", "forget_gate", "output_gate", "candidate", "cell", "hidden"),
         "GRU": ("update_gate", "reset_gate", "candidate", "hidden")}
GATES = {"input_gate", "forget_gate", "output_gate", "update_gate", "reset_gate"}
FEATURES = {  # the built-in features of the text, by name: what each is, per token
    "quotes": "inside double quotes",
    "parens": "inside parentheses",
    "line_position": "position in the line (characters since it began)",
    "word_start": "the token starts a word",
    "after_newline": "just after a line end",
}
SATURATED = 0.1  # a gate below 0.1 or above 0.9 is saturated (Karpathy et al. 2015, figure 3)


class InspectError(TextgenError):
    """A text, layer or unit inspect cannot read; param says which (text, layer or units)."""

    def __init__(self, message: str, param: str = "text"):
        super().__init__(message)
        self.param = param


@dataclass
class Layer:
    """One recurrent layer's record: its name (lstm_1), kind (LSTM or GRU), the units kept (their indices) and
    each part's values, (tokens, units kept)."""
    name: str
    kind: str
    units: list[int]
    parts: dict[str, np.ndarray]


@dataclass
class Inspection:
    """A text as the model read it: each token's text and where it starts, the recorded layers, the five likeliest
    next tokens after each (ids and probabilities) and the real next token's surprisal in bits (nan at the end)."""
    tokens: list[str]
    ids: list[int]
    offsets: list[int]
    layers: list[Layer]
    top_ids: np.ndarray
    top_probs: np.ndarray
    surprisal: np.ndarray
    vocab: list[str]

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def inspect(run: Run, text: str, layers: list[int] | None = None, units: list[int] | None = None,
            names: tuple[str, str, str] = ("TEXT", "--layer", "--units"), stepper: Stepper | None = None) -> Inspection:
    """Read text with the run's model. layers: 1-based layer numbers to keep (all by default); units: the unit
    indices to keep in each (all by default). Errors (InspectError) name the text, layers and units as `names` do
    (the command's argument and flags, or a request's fields). stepper: the run's, where one is made already (the
    server's batch); it is only read."""
    what = names[0]
    if len(text) > MAX_CHARS:
        raise InspectError(f"{what} has {len(text):,} characters; inspect reads at most about {MAX_TOKENS:,} tokens; "
                           "give a shorter text")
    try:
        ids, _ = encode_seed(run.tokenizer, text, what)
    except TextgenError as e:
        raise InspectError(str(e)) from None
    if len(ids) > MAX_TOKENS:
        raise InspectError(f"{what} has {len(ids):,} tokens; inspect reads at most {MAX_TOKENS:,}; give a shorter text")
    stepper = stepper or Stepper(run.weights)
    if stepper.bidirectional:
        raise InspectError("this run's model is bidirectional: its backward half reads the text from the end, so no "
                           "state belongs to one token; inspect reads forward models")
    chosen = _layers(stepper, layers, units, names[1:])
    recorded = [Layer(f"{layer.kind.lower()}_{i + 1}", layer.kind, kept,
                      {part: np.zeros((len(ids), len(kept)), np.float32) for part in PARTS[layer.kind]})
                for i, layer, kept in chosen]
    state, last = stepper.zero_state(1), np.zeros((len(ids), stepper.recurrent[-1].units), np.float32)
    for t, token in enumerate(ids):
        parts = [{} for _ in stepper.recurrent]
        h, state = stepper.advance(state, np.array([token]), parts=parts)
        last[t] = h[0]
        for (i, _, kept), layer in zip(chosen, recorded):
            for part, values in layer.parts.items():
                values[t] = parts[i][part][0, kept]
    top_ids, top_probs, surprisal = _predictions(stepper, last, ids)
    detok = run.tokenizer.detokenizer()
    tokens = [detok.piece(i) for i in ids]
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens[:-1]])]).astype(int).tolist()
    return Inspection(tokens, ids, offsets, recorded, top_ids, top_probs, surprisal, run.tokenizer.vocab)


def _layers(stepper: Stepper, layers: list[int] | None, units: list[int] | None,
            names: tuple[str, str]) -> list[tuple[int, object, list]]:
    """(index, layer, units kept) of each layer asked for; one line naming what does not exist."""
    count = len(stepper.recurrent)
    numbers = layers or list(range(1, count + 1))
    wrong = [n for n in numbers if not 1 <= n <= count]
    if wrong:
        raise InspectError(f"{names[0]} {wrong[0]} does not exist: this model has {count} recurrent "
                           f"layer{'s' if count != 1 else ''} (1 to {count})", "layer")
    chosen = []
    for n in dict.fromkeys(numbers):
        layer = stepper.recurrent[n - 1]
        kept = list(dict.fromkeys(units)) if units else list(range(layer.units))
        bad = [u for u in kept if not 0 <= u < layer.units]
        if bad:
            raise InspectError(f"{names[1]} {bad[0]} does not exist: layer {n} has {layer.units} units (0 to "
                               f"{layer.units - 1})", "units")
        chosen.append((n - 1, layer, kept))
    return chosen


def _predictions(stepper: Stepper, hidden: np.ndarray, ids: list[int], chunk: int = 512):
    """The TOP likeliest next tokens after each token and the real next token's surprisal in bits."""
    n = len(ids)
    top_ids, top_probs = np.zeros((n, TOP), np.int64), np.zeros((n, TOP), np.float32)
    surprisal = np.full(n, np.nan)
    following = np.array(ids[1:] + [0])
    for at in range(0, n, chunk):
        probs = softmax(stepper.head(hidden[at:at + chunk]))
        best, best_probs = top_logprobs(probs, TOP)  # any scores: the likeliest first
        top_ids[at:at + len(probs), :best.shape[1]] = best
        top_probs[at:at + len(probs), :best.shape[1]] = best_probs
        picked = probs[np.arange(len(probs)), following[at:at + len(probs)]].astype(np.float64)
        surprisal[at:at + len(probs)] = -np.log2(np.maximum(picked, 1e-30))
    surprisal[-1] = np.nan  # nothing follows the last token
    return top_ids, top_probs, surprisal


def json_lines(inspection: Inspection) -> Iterator[str]:
    """One JSON object per token: index, token, surprisal_bits (null at the end), top ([[token, probability], ...])
    and layers ([{part: [one float per unit kept]}, ...]), in token order."""
    rounded = [{part: np.round(values.astype(np.float64), 6) for part, values in layer.parts.items()}
               for layer in inspection.layers]
    for t, token in enumerate(inspection.tokens):
        bits = inspection.surprisal[t]
        yield json.dumps({
            "index": t, "token": token, "surprisal_bits": None if math.isnan(bits) else round(float(bits), 6),
            "top": [[inspection.vocab[i], round(float(p), 6)]
                    for i, p in zip(inspection.top_ids[t], inspection.top_probs[t])],
            "layers": [{part: values[t].tolist() for part, values in layer.items()} for layer in rounded],
        }, ensure_ascii=False)


# Features of the text and the units that follow them


def feature_values(inspection: Inspection, feature: str) -> np.ndarray:
    """A feature's value at each token: a built-in one by name (FEATURES), or else a regular expression, 1 where
    the token has a character inside one of its matches in the text."""
    text, starts = inspection.text, inspection.offsets
    if feature in FEATURES:  # read at each token's first character that is not a space
        per_char = _char_feature(text, feature)
        firsts = [start + len(token) - len(token.lstrip(" \t")) for start, token in zip(starts, inspection.tokens)]
        return np.array([per_char[min(first, len(text))] for first in firsts], np.float64)
    try:
        pattern = re.compile(feature)
    except re.error as e:
        raise TextgenError(f"--find {shown(feature)} is neither a built-in feature ({', '.join(FEATURES)}) nor a "
                           f"regular expression that compiles ({e})") from None
    inside = np.zeros(len(text) + 1, np.int64)
    for match in pattern.finditer(text):
        inside[match.start()] += 1
        inside[match.end()] -= 1
    covered = np.cumsum(inside)[:len(text)] > 0
    ends = starts[1:] + [len(text)]
    return np.array([covered[a:b].any() for a, b in zip(starts, ends)], np.float64)


def _char_feature(text: str, feature: str) -> list[float]:
    """A built-in feature at each character position (and one past the end): the state before that character."""
    values, quoted, depth, column = [], False, 0, 0
    for i, char in enumerate(text + " "):
        before = text[i - 1] if i else "\n"
        values.append({"quotes": float(quoted), "parens": float(depth > 0), "line_position": float(column),
                       "after_newline": float(before == "\n"),
                       "word_start": float(char.isalnum() and not before.isalnum())}[feature])
        if char in '"“”':
            quoted = char == "“" or (char == '"' and not quoted)
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        column = 0 if char == "\n" else column + 1
    return values


def find_units(inspection: Inspection, feature: str, part: str | None = None, top: int = 10) -> list[dict]:
    """The units whose `part` (the cell state by default; a GRU's hidden state) follows the feature best over
    the text: Pearson's correlation, strongest first (either sign), as {"layer", "unit", "part", "correlation"}."""
    values = feature_values(inspection, feature)
    found = []
    for layer in inspection.layers:
        name = part or ("cell" if "cell" in layer.parts else "hidden")
        if name not in layer.parts:
            raise TextgenError(f"--part {name} is not recorded for {layer.name} ({layer.kind}: "
                               f"{', '.join(layer.parts)})")
        for unit, r in zip(layer.units, correlations(layer.parts[name], values)):
            found.append({"layer": layer.name, "unit": unit, "part": name, "correlation": r})
    found.sort(key=lambda row: -abs(row["correlation"]))
    return found[:top]


def correlations(columns: np.ndarray, feature: np.ndarray) -> list[float]:
    """Pearson's r of each column of (tokens, units) with the feature; 0 where either does not vary."""
    x = columns.astype(np.float64) - columns.mean(axis=0)
    y = feature - feature.mean()
    spread = np.sqrt((x * x).sum(axis=0) * (y * y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(spread > 0, (x * y[:, None]).sum(axis=0) / np.where(spread > 0, spread, 1.0), 0.0)
    return [float(v) for v in r]


def saturation(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The share of steps each unit's gate is below SATURATED and above 1 - SATURATED."""
    return (values < SATURATED).mean(axis=0), (values > 1 - SATURATED).mean(axis=0)


# The page's data


def page_data(inspection: Inspection, model: str) -> dict:
    """What the page draws, compact: each part of each layer as bytes (base64), one per token and unit, each unit
    scaled over its own range [lo, hi] (gates over [0, 1]); value = lo + byte / 255 * (hi - lo). The JSON lines
    carry the values whole."""
    layers = []
    for layer in inspection.layers:
        parts = {}
        for part, values in layer.parts.items():
            lo = np.zeros(values.shape[1], np.float32) if part in GATES else values.min(axis=0)
            hi = np.ones(values.shape[1], np.float32) if part in GATES else values.max(axis=0)
            span = np.where(hi > lo, hi - lo, 1.0)
            scaled = np.rint((values - lo) / span * 255.0).clip(0, 255).astype(np.uint8)
            parts[part] = {"data": base64.b64encode(scaled.tobytes()).decode("ascii"),
                           "lo": np.round(lo, 6).tolist(), "hi": np.round(hi, 6).tolist()}
        layers.append({"name": layer.name, "kind": layer.kind, "units": layer.units, "parts": parts})
    surprisal = [None if math.isnan(b) else round(float(b), 3) for b in inspection.surprisal]
    top = [[[inspection.vocab[i], round(float(p), 4)] for i, p in zip(ids, probs)]
           for ids, probs in zip(inspection.top_ids, inspection.top_probs)]
    return {"model": model, "tokens": inspection.tokens, "surprisal": surprisal, "top": top, "layers": layers,
            "features": FEATURES}
