"""The word, whitespace and char levels' tokenizer (WordTokenizer): vocabulary from counts, encode, decode a token
at a time into readable text, its tokenizer.json (0 = <pad>, 1 = <unk>)."""
from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lstm_textgen.atomic import write_text
from lstm_textgen.errors import TokenizerError
from lstm_textgen.text.tokenizer import PAD, PAD_ID, SCHEMA_VERSION, UNK, UNK_ID

_CLITIC = r"['’](?:s|ll|re|ve|d|m)(?![\w'’])"
# A word-level token is a newline, a word (hyphenated or with an inner apostrophe, as in o'er), a clitic
# split off its word ("he 's", "do n't") so the vocabulary stays small, a quote, or a run of one mark.
# A quote with no letter before it and a word after it opens; any other quote closes.
# As in the Penn Treebank, opening quotes become their own tokens (`` and `) so decoding knows the side.
WORD_RE = re.compile(
    r"(?P<nl>\n)"
    r"|(?P<open2>(?<!\w)\"(?=[\w'(\[]))"
    r"|(?P<open1>(?<![\w'’])'(?=\w))"
    r"|\w+?(?=n['’]t(?![\w'’]))"  # "do" of "don't"
    r"|n['’]t(?![\w'’])"
    rf"|{_CLITIC}"
    rf"|\w+(?:-\w+|['’](?!(?:s|ll|re|ve|d|m)(?![\w'’]))\w+)*"
    r"|(?P<mark>[^\w\s])(?P=mark)*"
)
# The whitespace level reads pre-tokenized corpora (Penn Treebank, WikiText): a token is any run of
# non-space characters, plus one newline token at each line end.
WHITESPACE_RE = re.compile(r"\n|[^\s]+")
LEVELS = ("word", "whitespace", "char")
OPENING = {"open2": "``", "open1": "`"}
SURFACE = {"``": '"', "`": "'", "''": '"'}  # how quote tokens are written back
_CLITIC_RE = re.compile(rf"^(?:{_CLITIC}|n['’]t)$", re.IGNORECASE)
_CLOSING_RE = re.compile(r"^(?:[,.;:!?)\]}%…”’'\"]+|''|--+)$")  # no space before these
_OPENING_RE = re.compile(r"^(?:[(\[{$¿¡“‘]|``|`|--+)$")  # no space after these


class WordTokenizer:
    """Maps text to token ids and back at the word, whitespace or char level; `vocab[i]` is the token with id i."""

    subword = False  # a token is a whole word (or character): a suggestion is one token

    def __init__(self, level: str, lowercase: bool, vocab: list[str], counts: list[int] | None = None,
                 unk_count: int = 0):
        self.level, self.lowercase, self.vocab = level, lowercase, vocab
        self.counts = counts or [0] * len(vocab)
        self.unk_count = unk_count
        self.index = {token: i for i, token in enumerate(vocab)}
        if PAD in self.index:  # a literal "<pad>" in whitespace-level text is unknown, never the padding id
            self.index[PAD] = UNK_ID

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def seed_tokens(self) -> int:
        """How many tokens of the training text seed the samples written after each epoch."""
        return 40 if self.level == "char" else 8

    @property
    def unit(self) -> str:
        """What one token is called in a message."""
        return "character" if self.level == "char" else "word"

    @property
    def spaces_are_text(self) -> bool:
        """Whether a text of only spaces or line ends is input the model reads (a character is a token)."""
        return self.level == "char"

    def split(self, text: str) -> Iterator[str]:
        """The token strings of text, before the vocabulary is applied."""
        if self.lowercase:
            text = text.lower()
        if self.level == "char":
            return iter(text)
        if self.level == "whitespace":
            return (m.group() for m in WHITESPACE_RE.finditer(text))
        return (OPENING.get(m.lastgroup, m.group()) if m.lastgroup in OPENING else m.group()
                for m in WORD_RE.finditer(text))

    @classmethod
    def from_counts(cls, counter: Counter, level: str = "word", lowercase: bool = True,
                    max_vocab: int | None = None, min_count: int = 1) -> "WordTokenizer":
        """The vocabulary of token counts made by split(): the most frequent first, ties in first-seen order."""
        counter = Counter(counter)
        # "<unk>" in the text is the reserved unknown token (id 1), as pre-tokenized corpora mean it
        # (only the whitespace level can produce it; word level splits it into "<", "unk", ">").
        literal_unk = counter.pop(UNK, 0) + counter.pop(PAD, 0)  # a literal "<pad>" is unknown too
        kept = [(t, c) for t, c in counter.most_common() if c >= min_count]
        if max_vocab is not None:
            kept = kept[: max_vocab - 2]
        unk_count = sum(counter.values()) - sum(c for _, c in kept) + literal_unk
        return cls(level, lowercase, [PAD, UNK] + [t for t, _ in kept], [0, unk_count] + [c for _, c in kept],
                   unk_count)

    def recounted(self, counter: Counter, extend: bool = False, max_vocab: int | None = None,
                  min_count: int = 1) -> "WordTokenizer":
        """This vocabulary, every token at its id, with the counts of another text's tokens (made by split());
        extend: followed by that text's tokens it lacks that pass min_count, commonest first (ties in
        first-seen order), up to max_vocab tokens in all."""
        new = []
        if extend:
            room = None if max_vocab is None else max(max_vocab - self.vocab_size, 0)
            new = [(t, c) for t, c in Counter(counter).most_common() if c >= min_count and t not in self.index][:room]
        counts = [0, 0] + [counter.get(t, 0) for t in self.vocab[2:]] + [c for _, c in new]
        counts[UNK_ID] = sum(counter.values()) - sum(counts)  # a literal <unk> or <pad> of the text included
        return WordTokenizer(self.level, self.lowercase, self.vocab + [t for t, _ in new], counts, counts[UNK_ID])

    def encode(self, text: str) -> list[int]:
        return [self.index.get(t, UNK_ID) for t in self.split(text)]

    def encode_array(self, text: str) -> np.ndarray:
        """encode() as an int32 array, built without an intermediate list."""
        index = self.index
        return np.fromiter((index.get(t, UNK_ID) for t in self.split(text)), dtype=np.int32)

    def typed(self, before: str, text: str) -> list[tuple[int, str]]:
        """The tokens a person's own text adds after `before`, each with the text it stands for (an unknown word
        is fed as <unk>, and shown as typed)."""
        return [(UNK_ID if self.index.get(t, UNK_ID) == PAD_ID else self.index.get(t, UNK_ID), t)
                for t in self.split(text)]

    def has_token(self, text: str) -> bool:
        """Whether text is one token of the vocabulary (not <pad> or <unk>)."""
        return self.index.get(text, UNK_ID) > UNK_ID

    def spell(self, ids: list[int]) -> str:
        """The tokens as a list of choices shows them, one after the other."""
        return "".join(self.vocab[i] for i in ids)

    def word_done(self, ids: list[int], following: int | None) -> bool:
        """Whether the tokens make a whole choice: at this level every token does."""
        return True

    def unknown(self, text: str) -> list[str]:
        """Tokens of text that are not in the vocabulary, each once, in order."""
        return list(dict.fromkeys(t for t in self.split(text) if t not in self.index or t in (PAD, UNK)))

    def chars_from(self, text: str, k: int) -> int:
        """How many characters of text (lower-cased when the tokenizer lower-cases) lie from the start of its
        token k (counting from 0) to its end; 0 when it has no token k."""
        if self.lowercase:
            text = text.lower()
        if self.level == "char":
            return max(len(text) - k, 0)
        pattern = WHITESPACE_RE if self.level == "whitespace" else WORD_RE
        match = next(itertools.islice(pattern.finditer(text), k, None), None)
        return len(text) - match.start() if match else 0

    def unknown_chars(self, text: str) -> int:
        """How many characters of text (lower-cased when the tokenizer lower-cases) lie inside <unk> tokens."""
        return sum(len(t) for t in self.split(text) if self.index.get(t, UNK_ID) == UNK_ID)

    def decode(self, ids: Iterable[int]) -> str:
        detok = Detokenizer(self)
        return "".join(detok.piece(int(i)) for i in ids)

    def detokenizer(self, memo: dict | None = None) -> "Detokenizer":
        """A fresh streaming decoder; memo (shared between decoders of this tokenizer) remembers pieces."""
        return Detokenizer(self, memo)

    def to_json(self, version: str) -> dict:
        return {"schema": SCHEMA_VERSION, "lstm_textgen_version": version, "level": self.level,
                "lowercase": self.lowercase, "vocab": self.vocab, "counts": self.counts}

    def save(self, path: Path, version: str) -> None:
        write_text(path, json.dumps(self.to_json(version), ensure_ascii=False))

    @classmethod
    def from_json(cls, raw: dict, path: Path) -> "WordTokenizer":
        """The tokenizer saved in raw (tokenizer.json read back, its schema checked); TokenizerError when it is
        not one."""
        try:
            vocab, counts, lowercase = raw["vocab"], raw["counts"], raw["lowercase"]
            if (not isinstance(vocab, list) or vocab[:2] != [PAD, UNK] or raw["level"] not in LEVELS
                    or not all(isinstance(t, str) for t in vocab) or len(set(vocab)) != len(vocab)
                    or not isinstance(counts, list) or len(counts) != len(vocab) or not isinstance(lowercase, bool)
                    or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
                raise ValueError
            return cls(raw["level"], lowercase, vocab, counts, counts[UNK_ID])
        except (KeyError, TypeError, ValueError, IndexError):
            raise TokenizerError(f"{path} is not a valid tokenizer file") from None


class Detokenizer:
    """Turns ids into readable text one token at a time, so generation can stream.

    A token's text depends only on the token and whether it glues on: memo (token id, glue) -> (text, glue
    after) remembers it, for generation's many calls.
    """

    def __init__(self, tokenizer: WordTokenizer, memo: dict | None = None):
        self.tokenizer, self.memo = tokenizer, memo
        self.glue_next = True  # no space before the first token or after a newline/opening mark

    def piece(self, token_id: int) -> str:
        if self.memo is None:
            return self._piece(token_id)
        key = (token_id, self.glue_next)
        hit = self.memo.get(key)
        if hit is None:
            hit = self.memo[key] = (self._piece(token_id), self.glue_next)
        text, self.glue_next = hit
        return text

    def peek(self, token_id: int) -> str:
        """The text token_id would add now, without adding it."""
        glue = self.glue_next
        text = self._piece(token_id)
        self.glue_next = glue
        return text

    def flush(self) -> str:
        return ""  # every token is whole text

    def _piece(self, token_id: int) -> str:
        vocab = self.tokenizer.vocab
        token = vocab[token_id] if 0 <= token_id < len(vocab) else UNK
        if token == PAD:
            return ""
        if self.tokenizer.level == "char":
            return token if token != UNK else "?"
        if token == "\n":
            self.glue_next = True
            return "\n"
        if self.tokenizer.level == "whitespace":  # tokens are joined by one space, <unk> written as such
            space, self.glue_next = not self.glue_next, False
            return (" " if space else "") + token
        space = not self.glue_next and not (_CLOSING_RE.match(token) or _CLITIC_RE.match(token))
        self.glue_next = bool(_OPENING_RE.match(token))
        return (" " if space else "") + SURFACE.get(token, token)
