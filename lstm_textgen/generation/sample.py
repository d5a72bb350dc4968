"""The sampling loop over the numpy Stepper: seeds in, one recurrent step per token for the whole batch, rules
(rules.py) and a draw per row, stop conditions, readable text out; generate() and generate_many()."""
from __future__ import annotations

import dataclasses
import functools
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lstm_textgen.config import GenerateConfig
from lstm_textgen.errors import TextgenError
from lstm_textgen.model.weights import ModelWeights
from lstm_textgen.model.stepper import Stepper, blas_threads
from lstm_textgen.model.memory import available_bytes
from lstm_textgen.generation.rules import History, apply_rules, weights
from lstm_textgen.run.rundir import Run, load_run
from lstm_textgen.text.tokenizer import PAD_ID, UNK_ID, Tokenizer
from lstm_textgen.usertext import check_text, decode_text
from lstm_textgen.values import shown

_BLOCK = 128  # the draw sums blocks of this many probabilities, then searches inside one block


def draw_rows(logits: np.ndarray, settings: GenerateConfig, rngs: Sequence[np.random.Generator],
              histories: Sequence[History]) -> np.ndarray:
    """(rows, vocab) logits (overwritten) -> one token id per row, row i drawing with rngs[i]."""
    logits = apply_rules(logits, settings, histories)
    if settings.greedy:
        return logits.argmax(axis=1)
    u = [rng.random() for rng in rngs]
    if len(u) == 1 and (settings.top_k or settings.top_p < 1.0):  # one row, narrowed: draw among the tokens
        drawable = np.flatnonzero(logits[0] > -np.inf)                  # left (top-k leaves k), in id order
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


def encode_seed(tokenizer: Tokenizer, seed: str, what: str = "the seed phrase") -> tuple[list[int], list[str]]:
    """Seed ids (unknown words as <unk>) and the unknown words; refuses a seed the model cannot use (what names
    it: --seed, a prompt). At the char and bpe levels a seed of spaces or line ends is text too."""
    seed = check_text(seed, what)
    if not seed.strip() and (tokenizer.level not in ("char", "bpe") or not seed):
        example = ', e.g. --seed "once upon a time"' if what in ("the seed phrase", "--seed") else ""
        raise TextgenError(f"{what} is empty; give some text to continue{example}")
    ids = [UNK_ID if i == PAD_ID else i for i in tokenizer.encode(seed)]  # a typed "<pad>" is unknown too
    unknown = tokenizer.unknown(seed)
    if all(i == UNK_ID for i in ids):
        unit = "character" if tokenizer.level == "char" else "word"
        raise TextgenError(f"no {unit} of {what} {shown(seed)} is in the model's vocabulary "
                           f"({', '.join(map(shown, unknown[:10]))}); use {unit}s from the training text")
    return ids, unknown


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


class Generator:
    """Samples continuations of several seeds at once, one recurrent step per token for the whole batch."""

    def __init__(self, tokenizer: Tokenizer, weights: ModelWeights):
        self.tokenizer = tokenizer
        self.stepper = Stepper(weights)
        self.pieces: dict = {}  # the detokenizers' memo of each token's text

    def sample(self, seeds: list[str], settings: GenerateConfig, random_seeds: list[int],
               on_piece: Callable[[int, str], None] | None = None,
               on_unknown: Callable[[str, list[str]], None] | None = None) -> list[Sample]:
        """One continuation per seed (row i draws with random_seeds[i]); on_piece(row, text) streams them.

        Every seed is encoded before the first token is drawn: a seed the model cannot use is refused before
        anything streams, and on_unknown(seed, words) hears of each seed with words outside the vocabulary.
        """
        settings.check()
        encoded = [encode_seed(self.tokenizer, seed) for seed in seeds]
        for seed, (_, unknown) in zip(seeds, encoded):
            if unknown and on_unknown and seed not in seeds[:seeds.index(seed)]:
                on_unknown(seed, unknown)
        with blas_threads():
            return self._sample(seeds, encoded, settings, random_seeds, on_piece)

    def _sample(self, seeds, encoded, settings, random_seeds, on_piece) -> list[Sample]:
        state, logits = self.stepper.prefill([ids for ids, _ in encoded])
        rows = range(len(seeds))
        rngs = [np.random.default_rng(s) for s in random_seeds]
        histories = [History(ids, settings.no_repeat_ngram_size) for ids, _ in encoded]
        detoks = [self.tokenizer.detokenizer(self.pieces) for _ in rows]
        for detok, (ids, _) in zip(detoks, encoded):
            for i in ids:
                detok.piece(i)  # prime spacing and quote state with the seed
        stoppers = [Stopper(settings) for _ in rows]
        outputs: list[list[str]] = [[] for _ in rows]
        running = list(rows)
        next_ids = np.zeros(len(seeds), np.intp)
        for _ in range(settings.length):
            if len(running) < len(seeds):
                logits = logits[running]
            tokens = draw_rows(logits, settings, [rngs[r] for r in running], [histories[r] for r in running])
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
        for row in rows:  # a character left unfinished (bpe) is written as U+FFFD, as decode() does
            tail = detoks[row].flush()
            if tail:
                outputs[row].append(tail)
                if on_piece:
                    on_piece(row, tail)
        public = asdict(settings)
        return [Sample(seed, "".join(out), rs, history.ids[len(ids):], unknown, public)
                for seed, out, rs, history, (ids, unknown) in zip(seeds, outputs, random_seeds, histories, encoded)]


def seed_phrases(seed: str | None, seeds_file: str | None) -> list[str]:
    """The seed phrase, then those of a seeds file (one a line, blank lines skipped); refuses none at all, and
    text that is not UTF-8 or holds control characters."""
    seeds = [check_text(seed, "--seed")] if seed is not None else []
    if seeds_file:
        try:
            data = Path(seeds_file).read_bytes()
        except OSError as e:
            raise TextgenError(f"cannot read --seeds-file {seeds_file}: {e.strerror or e}") from None
        lines = [line for line in decode_text(data, f"--seeds-file {seeds_file}").split("\n") if line.strip()]
        if not lines:
            raise TextgenError(f"--seeds-file {seeds_file} has no seed phrases; write one a line")
        return seeds + lines
    if seed is None:
        raise TextgenError('give a seed phrase with --seed "once upon a time" (or --seeds-file FILE)')
    return seeds


def new_random_seed() -> int:
    return secrets.randbelow(2**31)


def settings_for(run: Run, **overrides) -> GenerateConfig:
    """The run's generate: section with the overrides that are not None, unchecked (Generator checks)."""
    return dataclasses.replace(run.config.generate, **{k: v for k, v in overrides.items() if v is not None})


def generate_many(run: Run | str | os.PathLike, seeds: list[str], samples: int = 1, random_seed: int | None = None,
                  on_piece: Callable[[int, str], None] | None = None,
                  on_unknown: Callable[[str, list[str]], None] | None = None, **settings) -> list[Sample]:
    """`samples` continuations of each seed, made as one batch: row i (seeds repeated, each `samples` times)
    draws with random_seed + i. settings are GenerateConfig fields; the rest come from the run's config."""
    if samples < 1:
        raise TextgenError(f"--samples must be >= 1, got {samples}")
    if random_seed is not None and random_seed < 0:
        raise TextgenError(f"--random-seed must be >= 0, got {random_seed}")
    run = run if isinstance(run, Run) else load_run(run)
    base = new_random_seed() if random_seed is None else random_seed
    settings = settings_for(run, **settings)
    generator = Generator(run.tokenizer, run.weights)
    need, have = batch_bytes(generator.stepper, len(seeds) * samples, settings.length), available_bytes()
    if have is not None and need > have:
        raise TextgenError(f"--samples {samples:,} for {len(seeds):,} seed{'s' if len(seeds) > 1 else ''} is a batch "
                           f"of {len(seeds) * samples:,} rows, which needs about {need / 1e9:,.1f} GB of memory, more "
                           f"than the {have / 1e9:,.1f} GB free; lower --samples (or -n), or generate in several runs")
    batch = [seed for seed in seeds for _ in range(samples)]
    return generator.sample(batch, settings, [base + i for i in range(len(batch))], on_piece, on_unknown)


def batch_bytes(stepper: Stepper, rows: int, length: int) -> int:
    """A generous estimate of the memory a batch of rows takes to generate length tokens each: a few copies of
    each row's logits, its recurrent state, and its text and history as Python objects."""
    units = sum(sum(part.units for part in layer) if isinstance(layer, tuple) else layer.units
                for layer in stepper.recurrent)
    per_row = 4 * (6 * stepper.vocab_size + 12 * units) + 160 * length + 4096
    return rows * per_row


def generate(run: Run | str | os.PathLike, seed: str, random_seed: int | None = None, **settings) -> str:
    """The continuation of seed (seed + result is the whole text); settings are GenerateConfig fields."""
    return generate_many(run, [seed], 1, random_seed, **settings)[0].text
