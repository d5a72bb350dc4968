"""Decoding, one token per step for a batch of texts: a Row is one text (its tokens so far, what the repetition
rules read of them, its detokenizer, its random draws and its stop rule under its settings), a Batch holds the
rows' recurrent state as one array per layer and steps them together, letting finished rows go and taking in new
ones between steps. generate, suggest/--interactive and the server's batch all decode with these."""
from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import numpy as np

from lstm_textgen.config import GenerateConfig
from lstm_textgen.generation.rules import RULES, History, apply_rules, greedy, narrowing, weights
from lstm_textgen.model.stepper import Stepper
from lstm_textgen.text.tokenizer import UNK, UNK_ID, Tokenizer


class Row:
    """One text being decoded. group: what it was asked for with (a request), for drawing rows alike together;
    index: its place there."""

    def __init__(self, tokenizer: Tokenizer, ids: list[int], settings: GenerateConfig, random_seed: int | None = None,
                 memo: dict | None = None, group: object = None, index: int = 0, logprobs: int | None = None):
        self.settings, self.group, self.index, self.seed_length = settings, group, index, len(ids)
        self.logprobs = logprobs  # None, or how many alternatives each drawn token's score lists (Batch.advance)
        self.score: Score | None = None  # the last drawn token's, when logprobs is set
        self.narrows = narrowing(settings)  # what draw() reads of the settings every step, worked out once
        self.rules = (settings.greedy, *(_key(getattr(settings, name)) for name in RULES))
        self.rng = np.random.default_rng(random_seed) if random_seed is not None else None
        self.history = History(ids, settings.no_repeat_ngram_size)
        self.detok = tokenizer.detokenizer(memo)
        for i in ids:
            self.detok.piece(i)  # prime spacing and quote state with the seed
        self.stopper = Stopper(settings)
        self.pieces: list[str] = []
        self.finish: str | None = None if settings.length > 0 else "length"  # "stop" or "length" once done

    @property
    def ids(self) -> list[int]:
        return self.history.ids

    @property
    def text(self) -> str:
        """The text added after the seed."""
        return "".join(self.pieces)

    def take(self, token: int, surface: str | None = None) -> str:
        """Add a token; returns its text (surface stands in for <unk>: the word a person typed). The row finishes
        at a stop string or newline count, or after settings.length tokens; a character left unfinished (bpe) is
        then written as U+FFFD, as decode() does."""
        self.history.append(token)
        piece = self.detok.piece(token)
        if token == UNK_ID and surface is not None:
            piece = piece.replace(UNK, surface)
        if self.stopper.done(piece):
            self.finish = "stop"
        elif self.stopper.count >= self.settings.length:
            self.finish = "length"
        if self.finish:
            piece += self.detok.flush()
        self.pieces.append(piece)
        return piece


class Score(NamedTuple):
    """A drawn token's log-probability under the model (before any sampling rule) and the `top` likeliest tokens
    as (the text each would have added, log-probability), likeliest first."""
    logprob: float
    top: list[tuple[str, float]]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """(rows, vocab) logits -> log-probabilities, in float64 (a probability of 1e-40 is still a number)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


def top_logprobs(logprobs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k likeliest tokens of each row of (rows, vocab) log-probabilities (or probabilities): ids and values
    (rows, k), likeliest first."""
    k = min(k, logprobs.shape[-1])
    if k == 0:
        return np.zeros((len(logprobs), 0), np.intp), np.zeros((len(logprobs), 0))
    best = np.argpartition(-logprobs, k - 1, axis=-1)[:, :k]
    values = np.take_along_axis(logprobs, best, axis=-1)
    order = np.argsort(-values, axis=-1, kind="stable")
    return np.take_along_axis(best, order, axis=-1), np.take_along_axis(values, order, axis=-1)


def _key(value):
    """A setting's value as part of a dict key: rows are drawn together only under equal settings."""
    return tuple(sorted(value.items())) if isinstance(value, dict) else value


class Stopper:
    """Decides when one row is done: stop strings, newline count, all after min_length."""

    def __init__(self, settings: GenerateConfig):
        self.settings, self.count, self.newlines, self.tail = settings, 0, 0, ""
        self.keep = max((len(s) for s in settings.stop), default=0)

    def done(self, piece: str) -> bool:
        settings = self.settings
        self.count += 1
        self.newlines += piece.count("\n")
        window = self.tail + piece  # holds any stop string that ends inside this piece
        self.tail = window[len(window) - self.keep:] if self.keep else ""
        if self.count < settings.min_length:
            return False
        if settings.stop_newlines and self.newlines >= settings.stop_newlines:
            return True
        return any(s in window for s in settings.stop)


class Batch:
    """Rows stepped together: the stepper's state for every row (one array per layer) and each row's next-token
    logits. Finished rows go after each step, new ones join between steps."""

    def __init__(self, stepper: Stepper):
        self.stepper, self.rows = stepper, []
        self.state, self.logits = None, None

    def admit(self, rows: list[Row], probes: Sequence[list[int]] = ()) -> np.ndarray:
        """Prefill the rows that have text to make (and the probes' ids, whose next-token logits are returned)
        in one batch, and join those rows to the batch."""
        rows = [row for row in rows if not row.finish]
        if not rows and not probes:
            return np.zeros((0, 0), np.float32)
        state, logits = self.stepper.prefill([row.ids for row in rows] + list(probes))
        if rows:
            self._join(rows, self.stepper.select_rows(state, list(range(len(rows)))) if probes else state,
                       logits[:len(rows)])
        return logits[len(rows):]

    def _join(self, rows: list[Row], state, logits: np.ndarray) -> None:
        if self.rows:
            state, logits = self.stepper.join_rows(self.state, state), np.concatenate([self.logits, logits])
        self.rows, self.state, self.logits = self.rows + rows, state, logits

    def drop(self, gone) -> None:
        """Let the rows for which gone(row) is true go (a request whose client left)."""
        self._keep([i for i, row in enumerate(self.rows) if not gone(row)])

    def advance(self) -> list[tuple[Row, str]]:
        """Draw a token for every row under its own settings, add it, let finished rows go and step the rest;
        returns each row's new text."""
        scored = [i for i, row in enumerate(self.rows) if row.logprobs is not None]
        logprobs = log_softmax(self.logits[scored]) if scored else None  # before draw() overwrites the logits
        tokens = draw(self.rows, self.logits)
        for j, i in enumerate(scored):
            row = self.rows[i]
            ids, values = top_logprobs(logprobs[j:j + 1], row.logprobs)
            row.score = Score(float(logprobs[j, tokens[i]]),
                              [(row.detok.peek(int(t)), float(v)) for t, v in zip(ids[0], values[0])])
        return self.feed(tokens.tolist())

    def feed(self, tokens: list[int], surfaces: Sequence[str | None] | None = None) -> list[tuple[Row, str]]:
        """Add the given token to each row (surfaces: what an <unk> stands for), then step as advance() does."""
        events = [(row, row.take(token, surfaces[i] if surfaces else None))
                  for i, (row, token) in enumerate(zip(self.rows, tokens))]
        keep = [i for i, row in enumerate(self.rows) if not row.finish]
        next_ids = np.array([tokens[i] for i in keep], np.intp)
        self._keep(keep)
        if self.rows:
            self.logits, self.state = self.stepper.step(self.state, next_ids)
        return events

    def _keep(self, keep: list[int]) -> None:
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        self.state = self.stepper.select_rows(self.state, keep) if keep else None
        self.logits = self.logits[keep] if keep else None


def draw(rows: list[Row], logits: np.ndarray) -> np.ndarray:
    """One token per row, each drawn under its own settings with its own random generator, as if it were drawn
    alone: rows under the same rules are drawn in one call, except a lone row of its group under a rule that
    narrows the tokens (top-k, top-p), which is drawn among the tokens left, as a request of one row is."""
    if len(rows) == 1:  # a single stream: one group of one
        row = rows[0]
        return draw_rows(logits, row.settings, [row.rng], [row.history], row.narrows)
    groups: dict[object, list[int]] = {}
    running: dict[int, int] = {}
    for row in rows:
        running[id(row.group)] = running.get(id(row.group), 0) + 1
    for i, row in enumerate(rows):
        alone = row.narrows and running[id(row.group)] == 1
        groups.setdefault(("alone", id(row.group)) if alone else row.rules, []).append(i)
    tokens = np.zeros(len(rows), np.intp)
    for where in groups.values():
        part = logits[where] if len(where) < len(rows) else logits
        first = rows[where[0]]
        tokens[where] = draw_rows(part, first.settings, [rows[i].rng for i in where],
                                  [rows[i].history for i in where], first.narrows)
    return tokens


_BLOCK = 128  # the draw sums blocks of this many probabilities, then searches inside one block


def draw_rows(logits: np.ndarray, settings: GenerateConfig, rngs: Sequence[np.random.Generator],
              histories: Sequence[History], narrows: bool | None = None) -> np.ndarray:
    """(rows, vocab) logits (overwritten) -> one token id per row, row i drawing with rngs[i]. narrows:
    narrowing(settings), when the caller already knows it."""
    logits = apply_rules(logits, settings, histories)
    if greedy(settings):
        return logits.argmax(axis=1)
    u = [rng.random() for rng in rngs]
    if len(u) == 1 and (narrowing(settings) if narrows is None else narrows):
        # one row, narrowed: draw among the tokens left (top-k leaves k), in id order
        drawable = np.flatnonzero(logits[0] > -np.inf)
        return drawable[[_draw(weights(logits[:, drawable])[0], u[0])]]
    probs = weights(logits)
    if len(u) == 1 or probs.shape[1] <= 4 * _BLOCK:
        return np.array([_draw(row, x) for row, x in zip(probs, u)])
    return _draw_rows(probs, np.array(u))


def _draw(weights: np.ndarray, u: float) -> int:
    """The index where u (in [0, 1)) falls in the cumulative weights: index i with chance weights[i] / sum.

    A long row is summed in blocks and only the chosen block is accumulated: half the cost of a cumulative
    sum over every entry. Cumulative sums are float64 (float32 over 10,000 entries drifts by ~1e-5).
    """
    if len(weights) <= 4 * _BLOCK:
        pick = _search(weights, u * weights.sum(dtype=np.float64))
    else:
        starts = _block_starts(len(weights))
        blocks = np.add.reduceat(weights, starts).cumsum(dtype=np.float64)  # block sums: pairwise, float32
        target = u * blocks[-1]
        block = min(int(blocks.searchsorted(target, side="right")), len(blocks) - 1)
        start = int(starts[block])
        pick = start + _search(weights[start:start + _BLOCK], target - (blocks[block - 1] if block else 0.0))
    return pick if weights[pick] > 0 else int(np.flatnonzero(weights)[-1])  # u rounded past the last entry


def _draw_rows(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """_draw for (rows, n) weights and (rows,) u at once: one numpy call per stage for the whole batch."""
    rows, n = weights.shape
    starts, everyone = _block_starts(n), np.arange(rows)
    blocks = np.add.reduceat(weights, starts, axis=1).cumsum(axis=1, dtype=np.float64)
    target = u * blocks[:, -1]
    block = np.minimum((blocks <= target[:, None]).sum(axis=1), len(starts) - 1)
    below = np.where(block > 0, blocks[everyone, block - 1], 0.0)
    wanted = starts[block][:, None] + np.arange(_BLOCK)
    columns = np.minimum(wanted, n - 1)  # the last block may be short
    inside = np.take_along_axis(weights, columns, axis=1)
    inside[wanted >= n] = 0.0
    cumulative = inside.cumsum(axis=1, dtype=np.float64)
    picks = columns[everyone, np.minimum((cumulative <= (target - below)[:, None]).sum(axis=1), _BLOCK - 1)]
    for row in np.flatnonzero(weights[everyone, picks] <= 0):  # u rounded past the last entry
        picks[row] = np.flatnonzero(weights[row])[-1]
    return picks


def _search(weights: np.ndarray, target: float) -> int:
    return min(int(weights.cumsum(dtype=np.float64).searchsorted(target, side="right")), len(weights) - 1)


@functools.cache
def _block_starts(n: int) -> np.ndarray:
    return np.arange(0, n, _BLOCK)
