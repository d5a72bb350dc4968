"""sample_next() and generate(): temperature / top-k / top-p / greedy sampling, state carried step to step."""
from __future__ import annotations

import os
import secrets
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from lstm_textgen.checkpoints import Run, load_run
from lstm_textgen.errors import TextgenError
from lstm_textgen.stepper import Stepper, softmax
from lstm_textgen.tokenizer import PAD_ID, UNK_ID, Detokenizer

BANNED = (PAD_ID, UNK_ID)  # never produced


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
    stop: list[str] = field(default_factory=list)  # stop after the text contains one of these
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
            (self.stop_newlines < 0, f"--stop-newlines must be >= 0, got {self.stop_newlines}"),
        ]
        bad = [message for failed, message in problems if failed]
        if bad:
            raise TextgenError("; ".join(bad))


def filter_logits(logits: np.ndarray, settings: Settings, history: Sequence[int] = ()) -> np.ndarray:
    """Apply bans, repetition rules, temperature, top-k and top-p to one row of logits (a copy)."""
    logits = np.array(logits, dtype=np.float64)
    logits[list(BANNED)] = -np.inf
    if settings.repetition_penalty != 1.0 and len(history):
        seen = np.unique(np.asarray(history))
        values = logits[seen]
        logits[seen] = np.where(values > 0, values / settings.repetition_penalty,
                                values * settings.repetition_penalty)
    n = settings.no_repeat_ngram_size
    if n and len(history) >= n - 1:
        logits[banned_by_ngrams(history, n)] = -np.inf
    if settings.greedy:
        return logits
    logits /= settings.temperature
    if 0 < settings.top_k < len(logits):
        cutoff = np.partition(logits, -settings.top_k)[-settings.top_k]
        logits[logits < cutoff] = -np.inf
    if settings.top_p < 1.0:
        order = np.argsort(-logits)
        probs = softmax(logits[order])
        # keep the smallest head of the sorted distribution whose mass reaches top_p
        keep = np.searchsorted(np.cumsum(probs), settings.top_p) + 1
        logits[order[keep:]] = -np.inf
    return logits


def banned_by_ngrams(history: Sequence[int], n: int) -> list[int]:
    """Tokens that would repeat an n-gram already in history."""
    if n == 1:
        return list(set(history))
    prefix = tuple(history[len(history) - n + 1:])
    return [history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i:i + n - 1]) == prefix]


def sample_next(logits: np.ndarray, settings: Settings, rng: np.random.Generator,
                history: Sequence[int] = ()) -> int:
    """One token id drawn from a row of logits under settings."""
    filtered = filter_logits(logits, settings, history)
    if not np.isfinite(filtered).any():  # every token banned (e.g. a tiny vocabulary): fall back
        filtered = filter_logits(logits, Settings(greedy=settings.greedy, temperature=settings.temperature))
    if settings.greedy:
        return int(np.argmax(filtered))
    cumulative = np.cumsum(softmax(filtered))
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), len(cumulative) - 1))


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
    if not seed.strip() and run.tokenizer.level == "word":
        raise TextgenError("the seed phrase is empty; give one with --seed \"once upon a time\"")
    if not seed:
        raise TextgenError("the seed phrase is empty; give one with --seed")
    ids = run.tokenizer.encode(seed)
    unknown = run.tokenizer.unknown(seed)
    if all(i == UNK_ID for i in ids):
        raise TextgenError(f"no word of the seed {seed!r} is in the model's vocabulary ({', '.join(unknown)}); "
                           "use words from the training text")
    return ids, unknown


class Generator:
    """Samples continuations of several seeds at once, one recurrent step per token for the whole batch."""

    def __init__(self, run: Run):
        self.run = run
        self.stepper = Stepper(run.weights)

    def prefill(self, seeds_ids: list[list[int]]):
        """Feed every seed through the model; returns the state and each row's next-token logits."""
        batch, longest = len(seeds_ids), max(len(ids) for ids in seeds_ids)
        state = self.stepper.zero_state(batch)
        logits = np.zeros((batch, self.stepper.vocab_size), np.float32)
        lengths = np.array([len(ids) for ids in seeds_ids])
        for t in range(longest):
            column = np.array([ids[t] if t < len(ids) else PAD_ID for ids in seeds_ids])
            active = t < lengths
            step_logits, state = self.stepper.step(state, column, active if not active.all() else None)
            logits[active] = step_logits[active]
        return state, logits

    def sample(self, seeds: list[str], settings: Settings, random_seeds: list[int],
               on_piece: Callable[[int, str], None] | None = None) -> list[Sample]:
        settings.check()
        encoded = [encode_seed(self.run, seed) for seed in seeds]
        state, logits = self.prefill([ids for ids, _ in encoded])
        rngs = [np.random.default_rng(s) for s in random_seeds]
        detoks = [Detokenizer(self.run.tokenizer) for _ in seeds]
        for detok, (ids, _) in zip(detoks, encoded):
            for i in ids:
                detok.piece(i)  # prime spacing and quote state with the seed
        histories = [list(ids) for ids, _ in encoded]
        outputs: list[list[str]] = [[] for _ in seeds]
        generated: list[list[int]] = [[] for _ in seeds]
        newlines = [0] * len(seeds)
        running = np.ones(len(seeds), bool)
        for _ in range(settings.length):
            next_ids = np.zeros(len(seeds), np.int64)
            for row in np.flatnonzero(running):
                token = sample_next(logits[row], settings, rngs[row], histories[row])
                next_ids[row] = token
                piece = detoks[row].piece(token)
                histories[row].append(token)
                generated[row].append(token)
                outputs[row].append(piece)
                newlines[row] += piece.count("\n")
                if on_piece:
                    on_piece(row, piece)
                if self._should_stop(settings, generated[row], outputs[row], newlines[row]):
                    running[row] = False
            if not running.any():
                break
            logits, state = self.stepper.step(state, next_ids, running if not running.all() else None)
        public = {k: v for k, v in asdict(settings).items()}
        return [Sample(seed, "".join(out), rs, gen, unknown, public)
                for seed, out, rs, gen, (_, unknown) in zip(seeds, outputs, random_seeds, generated, encoded)]

    @staticmethod
    def _should_stop(settings: Settings, generated: list[int], pieces: list[str], newlines: int) -> bool:
        if len(generated) < settings.min_length:
            return False
        if settings.stop_newlines and newlines >= settings.stop_newlines:
            return True
        if settings.stop:
            tail = "".join(pieces[-64:])
            return any(s in tail for s in settings.stop)
        return False


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
