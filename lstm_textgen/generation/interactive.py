"""Writing with the model a word at a time: suggest() lists the likeliest next words, interact() lets a
person choose among them (`lstm-textgen suggest`, `generate --interactive`).

Where a token may be part of a word (bpe), each candidate next token is completed to the next word boundary
greedily (the likeliest token at each step, at most MAX_COMPLETION tokens), and its probability is that of the
whole completion: the product of its tokens' probabilities. Completions that spell the same text are one choice,
their probabilities added. The tokenizer says where a word ends, so nothing here knows the level.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from lstm_textgen.config import GenerateConfig
from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.decode import Batch, Row
from lstm_textgen.generation.rules import BANNED
from lstm_textgen.generation.sample import encode_seed
from lstm_textgen.model.stepper import Stepper, blas_threads, softmax
from lstm_textgen.run.rundir import Run, load_run
from lstm_textgen.usertext import check_text, text_problem
from lstm_textgen.config.values import shown

MAX_COMPLETION = 8  # tokens a suggestion may take to reach a word boundary
LONGEST = 10_000_000  # a text grown with a person ends when they stop (interact's length), not before


@dataclass
class Choice:
    text: str  # exactly as it would be added (a bpe word keeps its leading space)
    probability: float
    ids: list[int]


class Continuation:
    """One text grown a token at a time (a decode Row, stepped alone), with the model's next-token probabilities
    after it (suggest, --interactive)."""

    def __init__(self, run: Run, seed: str, what: str = "the seed phrase"):
        self.run, self.seed = run, check_text(seed, what)
        ids, self.unknown = encode_seed(run.tokenizer, self.seed, what)
        self.row = Row(run.tokenizer, ids, GenerateConfig(length=LONGEST))
        self.batch = Batch(Stepper(run.weights))
        with blas_threads():
            self.batch.admit([self.row])
        self.probs = softmax(self.batch.logits)[0]

    @property
    def text(self) -> str:
        return self.seed + self.row.text

    @property
    def added(self) -> int:
        """Tokens added after the seed."""
        return len(self.row.ids) - self.row.seed_length

    def choices(self, k: int) -> list[Choice]:
        """The k likeliest next words, likeliest first, never <pad> or <unk>: twice k likeliest tokens, each
        completed greedily until the tokenizer says it is a whole word (at most MAX_COMPLETION tokens; a word or
        character level token is one already), choices that spell the same text merged."""
        tokenizer, stepper = self.run.tokenizer, self.batch.stepper
        first = [token for token, _ in top_ids(self.probs, 2 * k)]
        ids, probs = [[token] for token in first], [float(self.probs[token]) for token in first]
        open_rows = {r for r, row in enumerate(ids) if not tokenizer.word_done(row, None)}
        state = stepper.repeat(self.batch.state, len(first)) if open_rows else None
        with blas_threads():
            for _ in range(MAX_COMPLETION - 1):
                if not open_rows:
                    break
                active = np.array([r in open_rows for r in range(len(first))])
                logits, state = stepper.step(state, np.array([row[-1] for row in ids]), active)
                for r, row in zip(sorted(open_rows), softmax(logits[sorted(open_rows)])):
                    token = top_ids(row, 1)[0][0]
                    if tokenizer.word_done(ids[r], token):
                        open_rows.discard(r)
                        continue
                    ids[r].append(token)
                    probs[r] *= float(row[token])
        merged: dict[str, Choice] = {}
        for row, p in zip(ids, probs):
            text = tokenizer.spell(row)
            if text in merged:
                merged[text].probability += p
            else:
                merged[text] = Choice(text, p, row)
        return sorted(merged.values(), key=lambda choice: -choice.probability)[:k]

    def top(self, k: int) -> list[tuple[str, float]]:
        """choices() as (text, probability) pairs."""
        return [(choice.text, choice.probability) for choice in self.choices(k)]

    def append(self, token_id: int, surface: str | None = None) -> str:
        """Add one token; returns its text (surface stands in for <unk>: the word the person typed)."""
        with blas_threads():
            (_, piece), = self.batch.feed([token_id], [surface])
        self.probs = softmax(self.batch.logits)[0]
        return piece

    def append_text(self, text: str) -> list[str]:
        """Add a person's own words (unknown ones fed as <unk>); returns the unknown words."""
        tokenizer = self.run.tokenizer
        for token_id, surface in tokenizer.typed(self.text, text):
            self.append(token_id, surface)
        return tokenizer.unknown(text)


def label(text: str) -> str:
    """A choice as a list shows it: a bpe word without its leading space, a line end as \\n, a tab as \\t."""
    return (text.lstrip(" ") or text).replace("\n", "\\n").replace("\t", "\\t")


def top_ids(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k likeliest token ids of a (vocab,) probability row, likeliest first; never <pad> or <unk>."""
    probs = probs.copy()
    probs[BANNED,] = -1.0
    k = min(k, len(probs) - len(BANNED))
    best = np.argpartition(probs, -k)[-k:] if k > 0 else np.array([], np.intp)
    best = best[np.argsort(-probs[best], kind="stable")]
    return [(int(i), float(probs[i])) for i in best]


def suggest(run: Run | str | os.PathLike, text: str, k: int = 10, what: str = "the text") -> list[tuple[str, float]]:
    """The k likeliest next words after text, with the model's probabilities (what names text in errors)."""
    if k < 1:
        raise TextgenError(f"-k/--top must be >= 1, got {k}")
    run = run if isinstance(run, Run) else load_run(run)
    return Continuation(run, text, what).top(k)


def interact(continuation: Continuation, choices: int, length: int, ask: Callable[[str], str | None],
             show: Callable[[str], None], warn: Callable[[str], None]) -> str:
    """Grow the text with a person: show the top choices, ask() for a number, a word, Enter (= 1) or q.

    ask() returns None when input ends. Stops after `length` tokens. Returns the continuation.
    """
    start, tokenizer = len(continuation.text), continuation.run.tokenizer
    while continuation.added < length:
        options = continuation.choices(choices)
        show(continuation.text)
        show("  ".join(f"{i}. {label(choice.text)} ({choice.probability:.3f})"
                       for i, choice in enumerate(options, 1)))
        answer = ask("number, your own word, Enter for 1, q to quit")
        if answer is None or answer.strip().lower() == "q":
            break
        answer = answer.strip()
        problem = text_problem(answer)
        if problem is not None:
            warn(f"{shown(answer)} holds {problem}; type a number from 1 to {len(options)}, your own word, Enter or q")
            continue
        if not answer or (answer.isdigit() and 1 <= int(answer) <= len(options)):
            for token_id in options[int(answer or 1) - 1].ids:
                continuation.append(token_id)
            continue
        if not tokenizer.encode(answer) or (answer.isdigit() and not tokenizer.has_token(answer)):
            warn(f"{shown(answer)}: type a number from 1 to {len(options)}, your own word, Enter or q")
            continue
        unknown = continuation.append_text(answer)
        if unknown:
            warn(f"not in the vocabulary, fed as <unk>: {', '.join(unknown)}")
    return continuation.text[start:]
