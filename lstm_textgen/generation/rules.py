"""Sampling rules: one function per generation setting, each turning a batch of next-token logits into the logits
to draw from (-inf = cannot be drawn), applied in the order of RULES.

A new rule is one function here, one RULES entry, and one field of config.GenerateConfig (whose declaration gives
it its YAML key, its generate flag and its HTTP field).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from lstm_textgen.text.tokenizer import PAD_ID, UNK_ID

BANNED = (PAD_ID, UNK_ID)  # never produced
_NUCLEUS_HEAD = 256  # top-p first sorts only this many likeliest tokens; it sorts all when they hold too little


class History:
    """A row's token ids and what the repetition rules need from them, kept up to date in O(1) a token. ids
    given at the start are the seed: they are in the text, but were not drawn (the penalties count only draws)."""

    def __init__(self, ids: Iterable[int] = (), ngram_size: int = 0):
        self.ids: list[int] = []
        self.ngram_size = ngram_size
        self._seen: set[int] = set()
        self._seen_ids = np.empty(64, np.intp)  # the distinct ids, in a growing buffer
        self._followers: dict[tuple[int, ...], set[int]] = {}  # (n-1)-gram -> tokens that followed it
        self._drawn: dict[int, int] | None = None  # token -> its slot in the two buffers below; None: the seed
        self._drawn_ids, self._drawn_counts = np.empty(64, np.intp), np.empty(64, np.float32)
        for token in ids:
            self.append(int(token))
        self._drawn = {}

    def append(self, token: int) -> None:
        ids, n = self.ids, self.ngram_size
        ids.append(token)
        if token not in self._seen:
            if len(self._seen) == len(self._seen_ids):
                self._seen_ids = np.concatenate([self._seen_ids, np.empty_like(self._seen_ids)])
            self._seen_ids[len(self._seen)] = token
            self._seen.add(token)
        if n > 1 and len(ids) >= n:
            self._followers.setdefault(tuple(ids[-n:-1]), set()).add(token)
        if self._drawn is not None:
            self._count(token)

    def _count(self, token: int) -> None:
        slot = self._drawn.get(token)
        if slot is None:
            slot = self._drawn[token] = len(self._drawn)
            if slot == len(self._drawn_ids):
                self._drawn_ids = np.concatenate([self._drawn_ids, np.empty_like(self._drawn_ids)])
                self._drawn_counts = np.concatenate([self._drawn_counts, np.empty_like(self._drawn_counts)])
            self._drawn_ids[slot], self._drawn_counts[slot] = token, 0.0
        self._drawn_counts[slot] += 1.0

    @property
    def seen(self) -> np.ndarray:
        return self._seen_ids[:len(self._seen)]

    @property
    def drawn(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct tokens added after the seed, and how many times each was."""
        size = len(self._drawn or ())
        return self._drawn_ids[:size], self._drawn_counts[:size]

    def ngram_bans(self) -> list[int]:
        """Tokens that would complete an n-gram already in the history."""
        n = self.ngram_size
        if n == 1:
            return list(self._seen)
        if n == 0 or len(self.ids) < n - 1:
            return []
        return list(self._followers.get(tuple(self.ids[len(self.ids) - n + 1:]), ()))


def logit_bias(logits: np.ndarray, bias: dict[int, float], histories: Sequence[History]) -> np.ndarray:
    """OpenAI's: each token id's bias added to its logit (-100 all but bans it, 100 all but forces it)."""
    tokens = np.fromiter(bias, np.intp, len(bias))
    logits[:, tokens] += np.fromiter(bias.values(), np.float32, len(bias))
    return logits


def repetition_penalty(logits: np.ndarray, penalty: float, histories: Sequence[History]) -> np.ndarray:
    """CTRL's penalty on tokens already in the text: positive logits divided by it, negative ones multiplied."""
    for row, history in zip(logits, histories):
        if history.ids:
            seen = history.seen
            values = row[seen]
            row[seen] = np.where(values > 0, values / penalty, values * penalty)
    return logits


def frequency_penalty(logits: np.ndarray, penalty: float, histories: Sequence[History]) -> np.ndarray:
    """OpenAI's: each token's logit lowered by penalty times the number of times it was drawn so far."""
    for row, history in zip(logits, histories):
        tokens, counts = history.drawn
        row[tokens] -= penalty * counts
    return logits


def presence_penalty(logits: np.ndarray, penalty: float, histories: Sequence[History]) -> np.ndarray:
    """OpenAI's: the logit of every token drawn so far lowered by penalty, once."""
    for row, history in zip(logits, histories):
        row[history.drawn[0]] -= penalty
    return logits


def no_repeat_ngram_size(logits: np.ndarray, n: int, histories: Sequence[History]) -> np.ndarray:
    """Bans every token that would complete an n-gram already in the text (unless that bans them all)."""
    for row, history in zip(logits, histories):
        bans = history.ngram_bans()
        if bans and len(set(bans).union(BANNED)) < len(row):  # a tiny vocabulary can run out: then allow repeats
            row[bans] = -np.inf
    return logits


def top_k(logits: np.ndarray, k: int, histories: Sequence[History]) -> np.ndarray:
    """Only the k likeliest tokens of each row stay (exactly k: ties at the edge are cut by position)."""
    if k >= logits.shape[1]:
        return logits
    rows, kept = np.arange(len(logits))[:, None], np.argpartition(logits, -k, axis=1)[:, -k:]
    out = np.full_like(logits, -np.inf)
    out[rows, kept] = logits[rows, kept]
    return out


def min_p(logits: np.ndarray, share: float, histories: Sequence[History]) -> np.ndarray:
    """Only the tokens at least `share` times as likely as the row's likeliest stay: p >= share * p_max, which is
    logit >= max logit + log(share)."""
    logits[logits < logits.max(axis=1, keepdims=True) + np.log(share)] = -np.inf
    return logits


def temperature(logits: np.ndarray, value: float, histories: Sequence[History]) -> np.ndarray:
    """Logits divided by the temperature: below 1 sharpens the distribution, above 1 flattens it."""
    logits *= 1.0 / value
    return logits


def top_p(logits: np.ndarray, p: float, histories: Sequence[History]) -> np.ndarray:
    """Nucleus sampling: only the smallest set of likeliest tokens whose probability reaches p stays."""
    out = np.full_like(logits, -np.inf)
    for row, target in zip(logits, out):
        drawable = np.flatnonzero(row > -np.inf)  # after top-k only k are: the nucleus is found among them
        kept = drawable[_nucleus(weights(row[drawable][None])[0], p)]
        target[kept] = row[kept]
    return out


@dataclass(frozen=True)
class Rule:
    """A sampling rule: its setting's value that changes nothing, the function, and what it does to the draw."""
    off: object
    apply: Callable[[np.ndarray, object, Sequence[History]], np.ndarray]
    shapes: bool = False  # it never changes which token is likeliest: greedy skips it
    narrows: bool = False  # it can leave only some tokens drawable: a lone row is drawn among those


# setting (a GenerateConfig field) -> its rule, applied in this order
RULES: dict[str, Rule] = {
    "logit_bias": Rule({}, logit_bias),
    "repetition_penalty": Rule(1.0, repetition_penalty),
    "frequency_penalty": Rule(0.0, frequency_penalty),
    "presence_penalty": Rule(0.0, presence_penalty),
    "no_repeat_ngram_size": Rule(0, no_repeat_ngram_size),
    "top_k": Rule(0, top_k, shapes=True, narrows=True),
    "min_p": Rule(0.0, min_p, shapes=True, narrows=True),
    "temperature": Rule(1.0, temperature, shapes=True),
    "top_p": Rule(1.0, top_p, shapes=True, narrows=True),
}


def greedy(settings) -> bool:
    """Whether the likeliest token is always taken: greedy, or temperature 0 (as OpenAI, llama.cpp and vLLM read it)."""
    return settings.greedy or settings.temperature == 0


def apply_rules(logits: np.ndarray, settings, histories: Sequence[History]) -> np.ndarray:
    """(rows, vocab) logits (changed in place where a rule can) -> the logits to draw from under settings."""
    logits[:, BANNED] = -np.inf
    argmax = greedy(settings)
    for name, rule in RULES.items():
        value = getattr(settings, name)
        if value != rule.off and not (argmax and rule.shapes):
            logits = rule.apply(logits, value, histories)
    return logits


def narrowing(settings) -> bool:
    """Whether a rule that can leave only some tokens drawable is on."""
    return any(rule.narrows and getattr(settings, name) != rule.off for name, rule in RULES.items())


def weights(logits: np.ndarray) -> np.ndarray:
    """Unnormalised probabilities exp(logits - the row's largest), in place; -inf gives 0."""
    logits -= logits.max(axis=1, keepdims=True)
    return np.exp(logits, out=logits)


def _nucleus(weights: np.ndarray, p: float) -> np.ndarray:
    """Positions of the smallest set of likeliest entries whose probability reaches p."""
    total = weights.sum(dtype=np.float64)
    head = np.arange(len(weights))
    if len(weights) > _NUCLEUS_HEAD:
        head = np.argpartition(weights, -_NUCLEUS_HEAD)[-_NUCLEUS_HEAD:]
    order = head[np.argsort(-weights[head], kind="stable")]
    mass = np.cumsum(weights[order], dtype=np.float64) / total
    if mass[-1] < p and len(order) < len(weights):  # a flat distribution: the nucleus is wider
        order = np.argsort(-weights, kind="stable")
        mass = np.cumsum(weights[order], dtype=np.float64) / total
    return order[:min(int(np.searchsorted(mass, p)) + 1, len(order))]
