"""The interface every level's tokenizer offers (word, whitespace and char: words.py; bpe: bpe.py), and the special
tokens they share: id 0 is padding, id 1 the unknown token, at every level. Code outside text/ reaches a
tokenizer only through this interface, so no code there needs to know the level."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Protocol

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SCHEMA_VERSION = 1  # of tokenizer.json


class Detokenizer(Protocol):
    """Turns ids into readable text one token at a time, so generation can stream."""

    def piece(self, token_id: int) -> str:
        """The text token_id adds (it may be "" while a character is not whole yet)."""

    def peek(self, token_id: int) -> str:
        """The text token_id would add now, without adding it."""

    def flush(self) -> str:
        """What is left at the end (a character left unfinished decodes to U+FFFD), or ""."""


class Tokenizer(Protocol):
    """Maps text to token ids and back; `vocab[i]` is token i's text."""

    level: str  # word, whitespace, char or bpe: for what is shown and saved, never to branch on outside text/
    lowercase: bool
    vocab: list[str]
    counts: list[int]  # of each token in the training text
    subword: bool  # a token may be part of a word: a suggestion is completed to a whole word

    @property
    def vocab_size(self) -> int: ...

    @property
    def seed_tokens(self) -> int:
        """How many tokens of the training text seed the samples written after each epoch."""

    @property
    def unit(self) -> str:
        """What one token is called in a message (word, character, piece)."""

    @property
    def spaces_are_text(self) -> bool:
        """Whether a text of only spaces or line ends is input the model reads."""

    def split(self, text: str) -> Iterator[str] | list[str]:
        """The text of each token of text."""

    def encode(self, text: str) -> list[int]: ...

    def encode_array(self, text: str) -> np.ndarray:
        """encode() as an int32 array."""

    def decode(self, ids: Iterable[int]) -> str: ...

    def detokenizer(self, memo: dict | None = None) -> Detokenizer:
        """A fresh streaming decoder; memo (shared between decoders of one tokenizer) may remember pieces."""

    def unknown(self, text: str) -> list[str]:
        """Tokens of text that are not in the vocabulary, each once, in order."""

    def unknown_chars(self, text: str) -> int:
        """How many characters of text lie inside <unk> tokens."""

    def typed(self, before: str, text: str) -> list[tuple[int, str | None]]:
        """The tokens a person's own text adds after `before`, with the text an <unk> stands for (or None)."""

    def has_token(self, text: str) -> bool:
        """Whether text is one token of the vocabulary."""

    def spell(self, ids: list[int]) -> str:
        """The text of a choice of tokens, as a list of choices shows it."""

    def word_done(self, ids: list[int], following: int | None) -> bool:
        """Whether the tokens make a whole word when `following` comes next (None: not known yet)."""

    def to_json(self, version: str) -> dict: ...

    def save(self, path: Path, version: str) -> None: ...
