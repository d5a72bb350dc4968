"""Sampling over the numpy Stepper: temperature / top-k / top-p / greedy, repetition rules, stop rules, batches."""
from __future__ import annotations

import functools
import os
import secrets
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from lstm_textgen.checkpoints import Run, load_run
from lstm_textgen.errors import TextgenError
from lstm_textgen.stepper import Stepper, blas_threads
from lstm_textgen.tokenizer import PAD_ID, UNK_ID, Detokenizer

BANNED = (PAD_ID, UNK_ID)  # never produced
_NUCLEUS_HEAD = 256  # top-p first sorts only this many likeliest tokens; it sorts all when they hold too little
_BLOCK = 128  # the draw sums blocks of this many probabilities, then searches inside one block


@dataclass
class Settings:
    """How to pick each next token and when to stop; defaults come from the run's generate: section."""
    length: int = 60  # at most this many tokens
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    greedy: bool = False
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the text (CTRL-style)
    no_repeat_ngram_size: int = 0  # 0 = off; n bans any n-gram from appearing twice
    min_length: int = 0  # no stop condition applies before this many tokens
    stop: list[str] = field(default_factory=list)  # stop once the new text contains one of these
    stop_newlines: int = 0  # stop after this many newlines; 0 = off

    def check(self) -> None:
        problems = [
            (self.length < 0, f"-n/--length must be >= 0, got {self.length}"),
            (not self.temperature > 0, f"--temperature must be > 0, got {self.temperature}"),
            (self.top_k < 0, f"--top-k must be >= 0 (0 = off), got {self.top_k}"),
            (not 0 < self.top_p <= 1, f"--top-p must be in (0, 1], got {self.top_p}"),
            (not self.repetition_penalty > 0, f"--repetition-penalty must be > 0, got {self.repetition_penalty}"),
            (self.no_repeat_ngram_size < 0, f"--no-repeat-ngram-size must be >= 0, got {self.no_repeat_ngram_size}"),
            (self.min_length < 0, f"--min-length must be >= 0, got {self.min_length}"),
            (0 <= self.length < self.min_length, f"--min-length {self.min_length} is more than -n {self.length}"),
            (self.stop_newlines < 0, f"--stop-newlines must be >= 0, got {self.stop_newlines}"),
            (any(s == "" for s in self.stop), "--stop needs a non-empty TEXT"),
        ]
        bad = [message for failed, message in problems if failed]
        if bad:
            raise TextgenError("; ".join(bad))


class History:
    """A row's token ids and what the repetition rules need from them, kept up to date in O(1) a token."""

    def __init__(self, ids: Iterable[int] = (), ngram_size: int = 0):
        self.ids: list[int] = []
        self.ngram_size = ngram_size
        self._seen: set[int] = set()
        self._seen_ids = np.empty(64, np.intp)  # the distinct ids, in a growing buffer
        self._followers: dict[tuple[int, ...], set[int]] = {}  # (n-1)-gram -> tokens that followed it
        for token in ids:
            self.append(int(token))

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

    @property
    def seen(self) -> np.ndarray:
        return self._seen_ids[:len(self._seen)]

    def ngram_bans(self) -> list[int]:
        """Tokens that would complete an n-gram already in the history."""
        n = self.ngram_size
        if n == 1:
            return list(self._seen)
        if n == 0 or len(self.ids) < n - 1:
            return []
        return list(self._followers.get(tuple(self.ids[len(self.ids) - n + 1:]), ()))


def _apply_rules(logits: np.ndarray, settings: Settings, histories: Sequence[History]) -> None:
    """Bans, repetition penalty and n-gram bans on (rows, vocab) logits, in place."""
    for token in BANNED:
        logits[:, token] = -np.inf
    penalty, ngrams = settings.repetition_penalty, settings.no_repeat_ngram_size
    if penalty == 1.0 and not ngrams:
        return
    for row, history in zip(logits, histories):
        if penalty != 1.0 and history.ids:
            seen = history.seen
            values = row[seen]
            row[seen] = np.where(values > 0, values / penalty, values * penalty)
        bans = history.ngram_bans() if ngrams else ()
        if bans and len(set(bans).union(BANNED)) < len(row):  # a tiny vocabulary can run out: then allow repeats
            row[bans] = -np.inf


def _candidates(logits: np.ndarray, settings: Settings) -> tuple[np.ndarray | None, np.ndarray]:
    """(rows, vocab) logits -> the token ids that may be drawn ((rows, top_k), or None = all) and their
    unnormalised probabilities after temperature, top-k and top-p (0 outside the nucleus). Overwrites logits."""
    ids = None
    if 0 < settings.top_k < logits.shape[1]:
        ids = np.argpartition(logits, -settings.top_k, axis=1)[:, -settings.top_k:]  # exactly k
        logits = np.take_along_axis(logits, ids, axis=1)
    scale = 1.0 / settings.temperature
    top = logits.max(axis=1, keepdims=True) * scale
    weights = logits
    if settings.temperature != 1.0:
        weights *= scale
    if not (np.abs(top) < 64.0).all():  # exp(logit / T) could overflow or vanish: shift by the largest
        weights -= top
    np.exp(weights, out=weights)  # unnormalised: the draw divides by the sum
    if settings.top_p < 1.0:
        for row in weights:
            kept = _nucleus(row, settings.top_p)
            values = row[kept]
            row[:] = 0.0
            row[kept] = values
    return ids, weights


def _nucleus(weights: np.ndarray, top_p: float) -> np.ndarray:
    """Positions of the smallest set of likeliest entries whose probability reaches top_p."""
    total = weights.sum(dtype=np.float64)
    head = np.arange(len(weights))
    if len(weights) > _NUCLEUS_HEAD:
        head = np.argpartition(weights, -_NUCLEUS_HEAD)[-_NUCLEUS_HEAD:]
    order = head[np.argsort(-weights[head], kind="stable")]
    mass = np.cumsum(weights[order], dtype=np.float64) / total
    if mass[-1] < top_p and len(order) < len(weights):  # a flat distribution: the nucleus is wider
        order = np.argsort(-weights, kind="stable")
        mass = np.cumsum(weights[order], dtype=np.float64) / total
    return order[:min(int(np.searchsorted(mass, top_p)) + 1, len(order))]


def _sample_rows(logits: np.ndarray, settings: Settings, rngs: Sequence[np.random.Generator],
                 histories: Sequence[History]) -> np.ndarray:
    """(rows, vocab) logits (overwritten) -> one token id per row, row i drawing with rngs[i]."""
    _apply_rules(logits, settings, histories)
    if settings.greedy:
        return logits.argmax(axis=1)
    ids, weights = _candidates(logits, settings)
    u = [rng.random() for rng in rngs]
    if len(u) == 1 or weights.shape[1] <= 4 * _BLOCK:
        picks = np.array([_draw(row, x) for row, x in zip(weights, u)])
    else:
        picks = _draw_rows(weights, np.array(u))
    return picks if ids is None else ids[np.arange(len(picks)), picks]


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


def sample_next(logits: np.ndarray, settings: Settings, rng: np.random.Generator,
                history: Sequence[int] | History = ()) -> int:
    """One token id drawn from a row of logits under settings; history is the text so far."""
    if not isinstance(history, History):
        history = History(history, settings.no_repeat_ngram_size)
    return int(_sample_rows(np.array(logits, dtype=np.float32)[None], settings, [rng], [history])[0])


def distribution(logits: np.ndarray, settings: Settings, history: Sequence[int] = ()) -> np.ndarray:
    """The probabilities sample_next draws from, over the whole vocabulary (0 = cannot be drawn)."""
    row = np.array(logits, dtype=np.float32)[None]
    _apply_rules(row, settings, [History(history, settings.no_repeat_ngram_size)])
    probs = np.zeros(row.shape[1])
    if settings.greedy:
        probs[row.argmax()] = 1.0
        return probs
    ids, weights = _candidates(row, settings)
    probs[slice(None) if ids is None else ids[0]] = weights[0] / weights[0].sum(dtype=np.float64)
    return probs


@dataclass
class Sample:
    seed: str
    text: str  # the continuation; seed + text is the whole passage
    random_seed: int
    tokens: list[int]
    unknown: list[str]
    settings: dict

    def to_dict(self) -> dict:
        return {"seed": self.seed, "text": self.text, "random_seed": self.random_seed,
                "settings": self.settings, "unknown_seed_words": self.unknown}


def encode_seed(run: Run, seed: str) -> tuple[list[int], list[str]]:
    """Seed ids (unknown words as <unk>) and the unknown words; refuses a seed the model cannot use."""
    if not seed.strip() and (run.tokenizer.level != "char" or not seed):
        raise TextgenError('the seed phrase is empty; give one with --seed "once upon a time"')
    ids = [UNK_ID if i == PAD_ID else i for i in run.tokenizer.encode(seed)]  # a typed "<pad>" is unknown too
    unknown = run.tokenizer.unknown(seed)
    if all(i == UNK_ID for i in ids):
        raise TextgenError(f"no word of the seed {seed!r} is in the model's vocabulary ({', '.join(unknown)}); "
                           "use words from the training text")
    return ids, unknown


class _Stopper:
    """Decides when one row is done: stop strings, newline count, all after min_length."""

    def __init__(self, settings: Settings):
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


class _Pieces(Detokenizer):
    """Detokenizer.piece, memoised: a token's text depends only on the token and whether it glues on."""

    def __init__(self, tokenizer, memo: dict):
        super().__init__(tokenizer)
        self.memo = memo

    def piece(self, token_id: int) -> str:
        key = (token_id, self.glue_next)
        hit = self.memo.get(key)
        if hit is None:
            hit = self.memo[key] = (super().piece(token_id), self.glue_next)
        text, self.glue_next = hit
        return text


class Generator:
    """Samples continuations of several seeds at once, one recurrent step per token for the whole batch."""

    def __init__(self, run: Run):
        self.run = run
        self.stepper = Stepper(run.weights)
        self.pieces: dict = {}  # (token id, glue) -> (text, glue after), for _Pieces

    def sample(self, seeds: list[str], settings: Settings, random_seeds: list[int],
               on_piece: Callable[[int, str], None] | None = None) -> list[Sample]:
        """One continuation per seed (row i draws with random_seeds[i]); on_piece(row, text) streams them."""
        settings.check()
        encoded = [encode_seed(self.run, seed) for seed in seeds]
        with blas_threads():
            return self._sample(seeds, encoded, settings, random_seeds, on_piece)

    def _sample(self, seeds, encoded, settings, random_seeds, on_piece) -> list[Sample]:
        state, logits = self.stepper.prefill([ids for ids, _ in encoded])
        rows = range(len(seeds))
        rngs = [np.random.default_rng(s) for s in random_seeds]
        histories = [History(ids, settings.no_repeat_ngram_size) for ids, _ in encoded]
        detoks = [_Pieces(self.run.tokenizer, self.pieces) for _ in rows]
        for detok, (ids, _) in zip(detoks, encoded):
            for i in ids:
                detok.piece(i)  # prime spacing and quote state with the seed
        stoppers = [_Stopper(settings) for _ in rows]
        outputs: list[list[str]] = [[] for _ in rows]
        running = list(rows)
        next_ids = np.zeros(len(seeds), np.intp)
        for _ in range(settings.length):
            if len(running) < len(seeds):
                logits = logits[running]
                tokens = _sample_rows(logits, settings, [rngs[r] for r in running], [histories[r] for r in running])
            else:
                tokens = _sample_rows(logits, settings, rngs, histories)
            for row, token in zip(running, tokens.tolist()):
                next_ids[row] = token
                histories[row].append(token)
                piece = detoks[row].piece(token)
                outputs[row].append(piece)
                if on_piece:
                    on_piece(row, piece)
            running = [row for row in running if not stoppers[row].done(outputs[row][-1])]
            if not running:
                break
            active = None
            if len(running) < len(seeds):
                active = np.zeros(len(seeds), bool)
                active[running] = True
            logits, state = self.stepper.step(state, next_ids, active)
        public = asdict(settings)
        return [Sample(seed, "".join(out), rs, history.ids[len(ids):], unknown, public)
                for seed, out, rs, history, (ids, unknown) in zip(seeds, outputs, random_seeds, histories, encoded)]


def new_random_seed() -> int:
    return secrets.randbelow(2**31)


def settings_from(run: Run, **overrides) -> Settings:
    """The run's generate: defaults, then any overrides that are not None."""
    defaults = run.config.generate
    settings = Settings(length=defaults.length, temperature=defaults.temperature, top_k=defaults.top_k,
                        top_p=defaults.top_p)
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    return settings


def generate(run: Run | str | os.PathLike, seed: str, length: int | None = None, temperature: float | None = None,
             top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
             random_seed: int | None = None, **options) -> str:
    """The continuation of seed (seed + result is the whole text); options are Settings fields."""
    run = run if isinstance(run, Run) else load_run(run)
    settings = settings_from(run, length=length, temperature=temperature, top_k=top_k, top_p=top_p,
                             greedy=greedy, **options)
    seed_value = new_random_seed() if random_seed is None else random_seed
    return Generator(run).sample([seed], settings, [seed_value])[0].text
