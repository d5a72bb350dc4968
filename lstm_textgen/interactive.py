"""Writing with the model a word at a time: suggest() lists the likeliest next words, interact() lets a
person choose among them (`lstm-textgen suggest`, `generate --interactive`)."""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from lstm_textgen.errors import TextgenError
from lstm_textgen.fast.stepper import Stepper, blas_threads, softmax
from lstm_textgen.rules import BANNED
from lstm_textgen.rundir import Run, load_run
from lstm_textgen.sample import encode_seed
from lstm_textgen.tokenizer import PAD_ID, UNK, UNK_ID, Detokenizer
from lstm_textgen.values import shown


class Continuation:
    """One text grown a token at a time, with the model's next-token probabilities after it (suggest,
    --interactive)."""

    def __init__(self, run: Run, seed: str):
        self.run, self.stepper = run, Stepper(run.weights)
        self.ids, self.unknown = encode_seed(run.tokenizer, seed)
        self.seed_length, self.text = len(self.ids), seed
        self.detok = Detokenizer(run.tokenizer)
        for i in self.ids:
            self.detok.piece(i)
        with blas_threads():
            self.state, logits = self.stepper.prefill([self.ids])
        self.probs = softmax(logits)[0]

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k likeliest next tokens and their probabilities, likeliest first; never <pad> or <unk>."""
        return [(self.run.tokenizer.vocab[i], p) for i, p in top_ids(self.probs, k)]

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
        for token in tokenizer.split(text):
            token_id = tokenizer.index.get(token, UNK_ID)
            self.append(UNK_ID if token_id == PAD_ID else token_id, token)
        return tokenizer.unknown(text)


def top_ids(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k likeliest token ids of a (vocab,) probability row, likeliest first; never <pad> or <unk>."""
    probs = probs.copy()
    probs[BANNED,] = -1.0
    k = min(k, len(probs) - len(BANNED))
    best = np.argpartition(probs, -k)[-k:] if k > 0 else np.array([], np.intp)
    best = best[np.argsort(-probs[best], kind="stable")]
    return [(int(i), float(probs[i])) for i in best]


def suggest(run: Run | str | os.PathLike, text: str, k: int = 10) -> list[tuple[str, float]]:
    """The k likeliest next words after text, with the model's probabilities."""
    if k < 1:
        raise TextgenError(f"-k/--top must be >= 1, got {k}")
    run = run if isinstance(run, Run) else load_run(run)
    return Continuation(run, text).top(k)


def interact(continuation: Continuation, choices: int, length: int, ask: Callable[[str], str | None],
             show: Callable[[str], None], warn: Callable[[str], None]) -> str:
    """Grow the text with a person: show the top choices, ask() for a number, a word, Enter (= 1) or q.

    ask() returns None when input ends. Stops after `length` tokens. Returns the continuation.
    """
    start, tokenizer = len(continuation.text), continuation.run.tokenizer
    while len(continuation.ids) - continuation.seed_length < length:
        options = continuation.top(choices)
        show(continuation.text)
        show("  ".join(f"{i}. {word} ({p:.3f})" for i, (word, p) in enumerate(options, 1)))
        answer = ask("number, your own word, Enter for 1, q to quit")
        if answer is None or answer.strip().lower() == "q":
            break
        answer = answer.strip()
        if not answer or (answer.isdigit() and 1 <= int(answer) <= len(options)):
            continuation.append(tokenizer.index[options[int(answer or 1) - 1][0]])
            continue
        if not tokenizer.encode(answer) or (answer.isdigit() and answer not in tokenizer.index):
            warn(f"{shown(answer)}: type a number from 1 to {len(options)}, your own word, Enter or q")
            continue
        unknown = continuation.append_text(answer)
        if unknown:
            warn(f"not in the vocabulary, fed as <unk>: {', '.join(unknown)}")
    return continuation.text[start:]
