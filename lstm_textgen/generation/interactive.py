"""Writing with the model a word at a time: suggest() lists the likeliest next words, interact() lets a
person choose among them (`lstm-textgen suggest`, `generate --interactive`).

At the bpe level a token is often part of a word, so each candidate next token is completed to the next
word boundary greedily (the likeliest token at each step, at most MAX_COMPLETION tokens), and its
probability is that of the whole completion: the product of its tokens' probabilities. Completions that
spell the same text are one choice, their probabilities added.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from lstm_textgen.errors import TextgenError
from lstm_textgen.model.stepper import Stepper, blas_threads, softmax
from lstm_textgen.generation.rules import BANNED
from lstm_textgen.run.rundir import Run, load_run
from lstm_textgen.generation.sample import encode_seed
from lstm_textgen.text.tokenizer import PAD_ID, UNK, UNK_ID
from lstm_textgen.usertext import check_text, text_problem
from lstm_textgen.values import shown

MAX_COMPLETION = 8  # tokens a bpe suggestion may take to reach a word boundary
_INNER = "'’"  # an apostrophe followed by a letter stays inside a word (don't, king's)


@dataclass
class Choice:
    text: str  # exactly as it would be added (a bpe word keeps its leading space)
    probability: float
    ids: list[int]


class Continuation:
    """One text grown a token at a time, with the model's next-token probabilities after it (suggest,
    --interactive)."""

    def __init__(self, run: Run, seed: str, what: str = "the seed phrase"):
        self.run, self.stepper = run, Stepper(run.weights)
        seed = check_text(seed, what)
        self.ids, self.unknown = encode_seed(run.tokenizer, seed, what)
        self.seed_length, self.text = len(self.ids), seed
        self.detok = run.tokenizer.detokenizer()
        for i in self.ids:
            self.detok.piece(i)
        with blas_threads():
            self.state, logits = self.stepper.prefill([self.ids])
        self.probs = softmax(logits)[0]

    def choices(self, k: int) -> list[Choice]:
        """The k likeliest next tokens (bpe: words), likeliest first; never <pad> or <unk>."""
        tokenizer = self.run.tokenizer
        if tokenizer.level == "bpe":
            with blas_threads():
                return self._words(k)
        return [Choice(tokenizer.vocab[i], p, [i]) for i, p in top_ids(self.probs, k)]

    def top(self, k: int) -> list[tuple[str, float]]:
        """choices() as (text, probability) pairs."""
        return [(choice.text, choice.probability) for choice in self.choices(k)]

    def _words(self, k: int) -> list[Choice]:
        """Twice k likeliest tokens, each completed greedily to a word boundary, as up to k choices."""
        table = self.run.tokenizer.bytes
        first = [token for token, _ in top_ids(self.probs, 2 * k)]
        ids, probs = [[int(i)] for i in first], [float(self.probs[i]) for i in first]
        spelled = [table[i] for i in first]
        state, open_rows = self.stepper.repeat(self.state, len(first)), set(range(len(first)))
        for _ in range(MAX_COMPLETION - 1):
            active = np.array([r in open_rows for r in range(len(first))])
            logits, state = self.stepper.step(state, np.array([row[-1] for row in ids]), active)
            for r, row in zip(sorted(open_rows), softmax(logits[sorted(open_rows)])):
                token = top_ids(row, 1)[0][0]
                if word_ends(spelled[r], table[token]):
                    open_rows.discard(r)
                    continue
                ids[r].append(token)
                probs[r] *= float(row[token])
                spelled[r] += table[token]
            if not open_rows:
                break
        merged: dict[str, Choice] = {}
        for row, p, data in zip(ids, probs, spelled):
            text = data.decode("utf-8", "replace")
            if text in merged:
                merged[text].probability += p
            else:
                merged[text] = Choice(text, p, row)
        return sorted(merged.values(), key=lambda choice: -choice.probability)[:k]

    def append(self, token_id: int, surface: str | None = None) -> str:
        """Add one token; returns its text (surface stands in for <unk>: the word the person typed)."""
        piece = self.detok.piece(token_id)
        if token_id == UNK_ID and surface is not None:
            piece = piece.replace(UNK, surface)
        self.ids.append(token_id)
        self.text += piece
        with blas_threads():
            logits, self.state = self.stepper.step(self.state, np.array([token_id]))
        self.probs = softmax(logits)[0]
        return piece

    def append_text(self, text: str) -> list[str]:
        """Add a person's own words (unknown ones fed as <unk>); returns the unknown words."""
        tokenizer = self.run.tokenizer
        if tokenizer.level == "bpe":  # raw text: a word after a word needs its space
            if self.text and not self.text[-1].isspace() and text[:1].isalnum():
                text = " " + text
            for token_id in tokenizer.encode(text):
                self.append(token_id)
            return []
        for token in tokenizer.split(text):
            token_id = tokenizer.index.get(token, UNK_ID)
            self.append(UNK_ID if token_id == PAD_ID else token_id, token)
        return tokenizer.unknown(text)


def word_ends(spelled: bytes, following: bytes) -> bool:
    """Whether a bpe completion spelled so far is a whole word when `following` comes next: it has text, and
    it is punctuation or a line end, or the next character starts no letter or digit of it."""
    text = spelled.decode("utf-8", "ignore")
    if not text.strip(" "):
        return False  # spaces, or a character not yet whole: a word may follow
    if not any(ch.isalnum() for ch in text):
        return True  # a mark or a line end is a word of its own
    after = (spelled + following).decode("utf-8", "ignore")[len(text):]
    if not after:
        return False  # the next token holds part of a character
    return not (after[0].isalnum() or (after[0] in _INNER and after[1:2].isalpha()))


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
    while len(continuation.ids) - continuation.seed_length < length:
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
        if not tokenizer.encode(answer) or (answer.isdigit() and (tokenizer.level == "bpe"
                                                                   or answer not in tokenizer.index)):
            warn(f"{shown(answer)}: type a number from 1 to {len(options)}, your own word, Enter or q")
            continue
        unknown = continuation.append_text(answer)
        if unknown:
            warn(f"not in the vocabulary, fed as <unk>: {', '.join(unknown)}")
    return continuation.text[start:]
