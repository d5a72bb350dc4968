"""The byte-level BPE tokenizer (data.level: bpe) over Hugging Face `tokenizers`: learning its merges from
streamed text, encode, decode (a whole text, or a token at a time for streaming), save/load.

Every byte has a token of its own, so any UTF-8 text encodes with no unknown token and decodes back byte for
byte. The library's ids are ours minus 2: ids 0 (<pad>) and 1 (<unk>) mean at this level what they mean at
every other, and neither is ever produced by encoding (a typed "<pad>" is six ordinary bytes). Id 1's row of
the model stays untrained, generation never draws it, and decoding writes nothing for it.
"""
from __future__ import annotations

import codecs
import json
import re
from typing import Iterable, Iterator

import numpy as np

from lstm_textgen.atomic import write_text
from lstm_textgen.errors import TokenizerError
from lstm_textgen.text.tokenizer import PAD, SCHEMA_VERSION, UNK

OFFSET = 2  # our id = the library's id + 2
ALPHABET = 256  # the byte tokens every vocabulary starts with
PIECE_CHARS = 1 << 16  # text is encoded in pieces of about this many characters, several at once
BATCH_PIECES = 16  # pieces per call into the library (it encodes a batch on every core)
# A piece ends just before a space that follows a non-space character: the byte-level pre-tokenizer (GPT-2's
# pattern) never lets a pre-token run across such a place, so the pieces encode exactly as the whole text does.
_CUT = re.compile(r"(?<=\S) ")
_INNER = "'’"  # an apostrophe followed by a letter stays inside a word (don't, king's)


def _byte_table() -> dict[int, int]:
    """The byte-level alphabet's character -> the byte it stands for (GPT-2's bytes_to_unicode, inverted), as a
    str.translate table: a token's text translated and encoded as Latin-1 gives its bytes."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {b: b for b in kept}, 0
    for b in range(256):
        if b not in chars:
            chars[b], extra = 256 + extra, extra + 1
    return {c: b for b, c in chars.items()}


def pieces(text: str, size: int = PIECE_CHARS) -> Iterator[str]:
    """text cut into pieces of about `size` characters, each ending at a place no pre-token crosses (a long run
    with no such place stays whole)."""
    start = 0
    while len(text) - start > size:
        cut = text.rfind(" ", start + 1, start + size)
        while cut > start and text[cut - 1].isspace():  # a space after a space: look further back
            cut = text.rfind(" ", start + 1, cut)
        if cut <= start:  # none in this window: the first one after it
            found = _CUT.search(text, start + size)
            cut = found.start() if found else len(text)
        yield text[start:cut]
        start = cut
    if start < len(text) or not text:
        yield text[start:]


def stream_pieces(texts: Iterable[str]) -> Iterator[str]:
    """pieces() of the texts joined, without joining them: the text after one's last cut waits for the next."""
    rest = ""
    for text in texts:
        text = rest + text
        cut = text.rfind(" ")
        while cut > 0 and text[cut - 1].isspace():
            cut = text.rfind(" ", 0, cut)
        cut = max(cut, 0)
        if cut:
            yield from pieces(text[:cut])
        rest = text[cut:]
    if rest:
        yield from pieces(rest)


def _empty_model():
    from tokenizers import Tokenizer as Library, decoders, models, pre_tokenizers

    library = Library(models.BPE())
    library.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    library.decoder = decoders.ByteLevel()
    return library


class BPETokenizer:
    """Maps text to token ids and back, as Tokenizer does for the other levels; `vocab[i]` is token i's text."""

    level = "bpe"
    unk_count = 0
    subword = True  # a token is often part of a word: a suggestion is completed to a whole word
    seed_tokens = 12  # of the training text, to seed the samples written after each epoch
    unit = "piece"
    spaces_are_text = True  # spaces and line ends are bytes like any other

    def __init__(self, library, lowercase: bool, counts: list[int] | None = None):
        self.library, self.lowercase = library, lowercase
        table = _byte_table()
        by_id = sorted(library.get_vocab().items(), key=lambda item: item[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise ValueError("the library's ids are not 0..n-1")
        self.bytes = [b"", b""] + [token.translate(table).encode("latin-1") for token, _ in by_id]
        self.vocab = [PAD, UNK] + [b.decode("utf-8", "replace") for b in self.bytes[OFFSET:]]
        self.counts = counts or [0] * len(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @classmethod
    def learn(cls, texts: Iterable[str], vocab_size: int, lowercase: bool, min_count: int = 1) -> "BPETokenizer":
        """Learn merges up to vocab_size tokens in all from texts (pieces(), already lower-cased when lowercase
        is on), streamed: the library counts each text's words and drops the text."""
        from tokenizers import pre_tokenizers, trainers

        library = _empty_model()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size - OFFSET, min_frequency=min_count, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
        library.train_from_iterator(texts, trainer)
        return cls(library, lowercase)

    def encode_pieces(self, texts: Iterable[str]) -> Iterator[np.ndarray]:
        """The ids of each text (already lower-cased if the tokenizer lower-cases), a batch of pieces at a time."""
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) == BATCH_PIECES:
                yield from self._encode_batch(batch)
                batch = []
        if batch:
            yield from self._encode_batch(batch)

    def _encode_batch(self, batch: list[str]) -> Iterator[np.ndarray]:
        for encoding in self.library.encode_batch_fast(batch, add_special_tokens=False):
            yield np.asarray(encoding.ids, np.int32) + OFFSET

    def encode_array(self, text: str) -> np.ndarray:
        parts = list(self.encode_pieces(pieces(text.lower() if self.lowercase else text)))
        return np.concatenate(parts) if parts else np.zeros(0, np.int32)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def split(self, text: str) -> list[str]:
        """The text of each token (a piece of a character is written as U+FFFD)."""
        return [self.vocab[i] for i in self.encode(text)]

    def typed(self, before: str, text: str) -> list[tuple[int, None]]:
        """The tokens a person's own text adds after `before`: the raw text, a space put before a word that follows
        a word (every byte has a token, so nothing is unknown)."""
        if before and not before[-1].isspace() and text[:1].isalnum():
            text = " " + text
        return [(token, None) for token in self.encode(text)]

    def has_token(self, text: str) -> bool:
        return len(self.encode(text)) == 1

    def spell(self, ids: list[int]) -> str:
        return b"".join(self.bytes[i] for i in ids).decode("utf-8", "replace")

    def word_done(self, ids: list[int], following: int | None) -> bool:
        """Whether the tokens spell a whole word when `following` comes next: they have text, and it is punctuation
        or a line end, or the next character starts no letter or digit of it."""
        spelled = b"".join(self.bytes[i] for i in ids)
        text = spelled.decode("utf-8", "ignore")
        if not text.strip(" "):
            return False  # spaces, or a character not yet whole: a word may follow
        if not any(ch.isalnum() for ch in text):
            return True  # a mark or a line end is a word of its own
        if following is None:
            return False  # a word: whether it goes on depends on what follows
        after = (spelled + self.bytes[following]).decode("utf-8", "ignore")[len(text):]
        if not after:
            return False  # the next token holds part of a character
        return not (after[0].isalnum() or (after[0] in _INNER and after[1:2].isalpha()))

    def unknown(self, text: str) -> list[str]:
        return []  # every byte has a token

    def unknown_chars(self, text: str) -> int:
        return 0

    def decode(self, ids: Iterable[int]) -> str:
        table, n = self.bytes, len(self.bytes)
        return b"".join(table[i] if 0 <= i < n else b"" for i in map(int, ids)).decode("utf-8", "replace")

    def detokenizer(self, memo: dict | None = None) -> "ByteDetokenizer":
        return ByteDetokenizer(self)

    def to_json(self, version: str) -> dict:
        from tokenizers import __version__ as library_version

        return {"schema": SCHEMA_VERSION, "lstm_textgen_version": version, "level": self.level, "lowercase": self.lowercase,
                "id_offset": OFFSET, "counts": self.counts, "tokenizers_version": library_version,
                "huggingface": json.loads(self.library.to_str())}

    def save(self, path, version: str) -> None:
        write_text(path, json.dumps(self.to_json(version), ensure_ascii=False))

    @classmethod
    def from_json(cls, raw: dict, path) -> "BPETokenizer":
        """The tokenizer saved in raw (tokenizer.json read back); TokenizerError when it is not one."""
        from tokenizers import Tokenizer as Library

        try:
            if raw["id_offset"] != OFFSET:
                raise ValueError
            library = Library.from_str(json.dumps(raw["huggingface"]))
            tokenizer = cls(library, bool(raw["lowercase"]), [int(c) for c in raw["counts"]])
            if len(tokenizer.counts) != tokenizer.vocab_size or tokenizer.vocab_size < OFFSET + ALPHABET:
                raise ValueError
            return tokenizer
        except Exception:  # KeyError, TypeError, ValueError, and the library's own plain Exception
            raise TokenizerError(f"{path} is not a valid bpe tokenizer file") from None


class ByteDetokenizer:
    """Turns ids into text one token at a time: a character split over two tokens comes out once it is whole."""

    def __init__(self, tokenizer: BPETokenizer):
        self.bytes = tokenizer.bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def piece(self, token_id: int) -> str:
        data = self.bytes[token_id] if 0 <= token_id < len(self.bytes) else b""
        return self.decoder.decode(data)

    def peek(self, token_id: int) -> str:
        """The text token_id would add now, without adding it."""
        state = self.decoder.getstate()
        text = self.piece(token_id)
        self.decoder.setstate(state)
        return text

    def flush(self) -> str:
        """What a character left unfinished at the end decodes to (U+FFFD), or ""."""
        return self.decoder.decode(b"", final=True)
