"""Streaming tokenization of a whole corpus, at every level, into the training and validation token ids."""
from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from lstm_textgen.config import DataConfig
from lstm_textgen.errors import CorpusError
from lstm_textgen.text.bpe import BPETokenizer, stream_pieces
from lstm_textgen.text.corpus import CHUNK_BYTES, find_files, no_text_error, read_chunks, split_point
from lstm_textgen.text.tokenizer import UNK_ID, Tokenizer
from lstm_textgen.text.words import WordTokenizer

BLOCK = 8 << 20  # token numbers per block while tokenizing: 32 MiB, which glibc's malloc always maps on its own,
# so a freed block goes back to the system at once instead of staying in the heap
SLICE = 1 << 20  # token numbers counted or looked up at a time (numpy makes an int64 copy of them)


class Tokens(NamedTuple):
    """A corpus tokenized: the tokenizer, the training and validation ids, and how many characters the
    validation text has (as read, line ends normalised), which turns a loss per token into bits per character."""
    tokenizer: Tokenizer
    train: np.ndarray
    val: np.ndarray
    val_chars: int


def bits_per_char(loss: float | None, tokens: int | None, chars: int | None) -> float | None:
    """A mean loss per token (nats) as bits per character of a text of `chars` characters in `tokens` tokens:
    the validation figure every level shares (None when a number is missing)."""
    if loss is None or not tokens or not chars:
        return None
    return loss / math.log(2) * tokens / chars


def _count_numbers(blocks: list, block: int, n: int, size: int) -> np.ndarray:
    """How often each of the numbers 0..size-1 occurs among the first n numbers of the blocks."""
    counts, at = np.zeros(size, np.int64), 0
    while at < n:  # bincount makes an int64 copy: a slice at a time keeps it small
        i, j = divmod(at, block)
        numbers = blocks[i][j: j + min(SLICE, block - j, n - at)]
        counts += np.bincount(numbers, minlength=size)
        at += len(numbers)
    return counts


def tokenize_corpus(config: DataConfig, chunk_bytes: int = CHUNK_BYTES, block: int = BLOCK,
                    like: Tokenizer | None = None,
                    vocabulary: Callable[[Counter], WordTokenizer] | None = None, what: str = "corpus") -> Tokens:
    """Fit the tokenizer and encode the corpus, streaming: the same result as Tokenizer.fit and encode on
    whole files, but holding one chunk of text at a time (plus the counts and the int32 ids).

    One pass over the text numbers each token by its first appearance, into blocks of `block` int32;
    the counts of those numbers give the vocabulary, and a lookup table turns them into token ids,
    block by block, each block freed once placed: the ids are in memory once, plus one block.
    The bpe level learns its merges in a pass of its own (tokenize_bpe).
    like: a tokenizer whose vocabulary (bpe: merges) encodes the corpus instead of fitting one; its counts are
    counted afresh (a resumed run's own, which must give back its counts).
    vocabulary(counts) gives the other levels' vocabulary instead of fitting one (a fine-tuned run's: a base
    run's tokenizer recounted on this corpus, text/vocabulary.py).
    With data.val_corpus, all of data.corpus trains and val_corpus validates (tokenize_with_val_corpus).
    what names config.corpus in errors (data.val_corpus when it is the held-out text).
    """
    tokenizer = like if isinstance(like, BPETokenizer) else None
    if like is not None and tokenizer is None:
        vocabulary = like.recounted
    if config.val_corpus is not None:
        return tokenize_with_val_corpus(config, chunk_bytes, block, tokenizer, vocabulary)
    files = find_files(config.corpus, what)
    if config.level == BPETokenizer.level:
        return tokenize_bpe(config, files, chunk_bytes, block, tokenizer, what)
    probe = WordTokenizer(config.level, config.lowercase, [])
    first_seen, blocks, ends, marks, has_text = _number_tokens(files, probe, chunk_bytes, block, what)
    if not has_text:
        raise no_text_error(config.corpus, files, what)
    n = ends[-1]

    counts = _count_numbers(blocks, block, n, len(first_seen))
    tokens = list(first_seen)
    del first_seen
    counter = Counter(dict(zip(tokens, counts.tolist())))
    tokenizer = vocabulary(counter) if vocabulary else WordTokenizer.from_counts(
        counter, config.level, config.lowercase, config.max_vocab, config.min_count)
    if vocabulary is None and tokenizer.vocab_size <= 2:  # only <pad> and <unk>: every token would be unknown
        raise CorpusError(f"data.min_count={config.min_count} keeps no token of the corpus (its commonest appears "
                          f"{int(counts.max())} times); lower --set data.min_count")
    lookup = np.array([tokenizer.index.get(t, UNK_ID) for t in tokens], np.int32)  # number -> token id
    del tokens, counts, counter

    starts = [0, *ends[:-1]]
    cuts = [split_point(end - start, config.val_fraction) for start, end in zip(starts, ends)]
    val_chars = sum(_tail_chars(path, probe, chunks, start + cut, chunk_bytes, what)
                    for path, chunks, start, cut in zip(files, marks, starts, cuts))
    train, val = np.empty(sum(cuts), np.int32), np.empty(n - sum(cuts), np.int32)
    at_train = at_val = 0
    for start, end, cut in zip(starts, ends, cuts):  # a file's head goes to train, its tail to val
        _place(blocks, block, lookup, start, start + cut, train[at_train: at_train + cut])
        _place(blocks, block, lookup, start + cut, end, val[at_val: at_val + end - start - cut])
        at_train, at_val = at_train + cut, at_val + end - start - cut
    return Tokens(tokenizer, train, val, val_chars)


def _number_tokens(files: list[Path], probe: WordTokenizer, chunk_bytes: int, block: int, what: str):
    """One pass over the files' text, a chunk at a time: each token numbered by its first appearance, the numbers
    into blocks of `block` int32. Returns {token: number}, the blocks, per file the count of numbers up to its
    end, per file and chunk (numbers before it, its characters), and whether any of it is more than whitespace."""
    first_seen: dict[str, int] = {}  # in order of first appearance (ties keep it)
    blocks: list[np.ndarray | None] = []  # the token numbers of all files, one after the other
    ends: list[int] = []
    marks: list[list[tuple[int, int]]] = []
    n, has_text = 0, False
    with _bar(files, "tokenizing") as bar:
        for path in files:
            marks.append([])
            for text, size in read_chunks(path, chunk_bytes, what):
                marks[-1].append((n, len(text)))
                has_text = has_text or bool(text.strip())
                part = np.fromiter((first_seen.setdefault(t, len(first_seen)) for t in probe.split(text)),
                                   dtype=np.int32)
                n = _append(blocks, block, n, part)
                bar.update(size)
            ends.append(n)
    return first_seen, blocks, ends, marks, has_text


def tokenize_with_val_corpus(config: DataConfig, chunk_bytes: int = CHUNK_BYTES, block: int = BLOCK,
                             tokenizer: BPETokenizer | None = None,
                             vocabulary: Callable[[Counter], WordTokenizer] | None = None) -> Tokens:
    """data.val_corpus: every file of data.corpus trains whole (val_fraction is unused) and gives the vocabulary;
    every token of val_corpus validates, in that vocabulary (an unseen word is <unk>; bpe encodes any text).
    The validation text must be held out: a file of it that is also a file of the corpus is refused."""
    shared = set(p.resolve() for p in find_files(config.corpus)) & set(
        p.resolve() for p in find_files(config.val_corpus, "data.val_corpus"))
    if shared:
        named = ", ".join(sorted(str(p) for p in shared)[:2])
        raise CorpusError(f"data.val_corpus {config.val_corpus} is not held out: {len(shared)} of its files "
                          f"({named}) {'is' if len(shared) == 1 else 'are'} also part of the corpus {config.corpus}, "
                          "so the model would be scored on text it trained on; give data.val_corpus text outside "
                          "the corpus, or null to hold out each file's tail")
    trained = tokenize_corpus(dataclasses.replace(config, val_corpus=None, val_fraction=0.0), chunk_bytes, block,
                              tokenizer, vocabulary)
    held_out = dataclasses.replace(config, corpus=config.val_corpus, val_corpus=None, val_fraction=1.0)
    bpe = trained.tokenizer if isinstance(trained.tokenizer, BPETokenizer) else None
    val = tokenize_corpus(held_out, chunk_bytes, block, bpe, vocabulary=lambda counts: trained.tokenizer,
                          what="data.val_corpus")
    return Tokens(trained.tokenizer, trained.train, val.val, val.val_chars)


def _bar(files: list[Path], desc: str) -> tqdm:
    return tqdm(total=sum(p.stat().st_size for p in files), desc=desc, unit="B", unit_scale=True, leave=False,
                disable=None)  # disable=None: a bar on a terminal only


def _tail_chars(path: Path, probe: WordTokenizer, chunks: list[tuple[int, int]], cut: int, chunk_bytes: int,
                what: str) -> int:
    """The characters of a file from its token number `cut` (counted over the corpus) on: the chunk holding
    that token is read again to find where it starts."""
    if not chunks:  # an empty file
        return 0
    inside = max(i for i, (before, _) in enumerate(chunks) if before <= cut)
    text = next(itertools.islice(read_chunks(path, chunk_bytes, what), inside, None))[0]
    return probe.chars_from(text, cut - chunks[inside][0]) + sum(chars for _, chars in chunks[inside + 1:])


def _append(blocks: list, block: int, n: int, part: np.ndarray) -> int:
    """Put part after the first n numbers in blocks, adding blocks as they fill; returns the new count."""
    done = 0
    while done < len(part):
        if n == len(blocks) * block:
            blocks.append(np.empty(block, np.int32))  # pages not yet written take no memory
        at = n % block
        take = min(block - at, len(part) - done)
        blocks[-1][at: at + take] = part[done: done + take]
        n, done = n + take, done + take
    return n


def _place(blocks: list, block: int, lookup: np.ndarray, start: int, end: int, out: np.ndarray) -> None:
    """out = the ids of numbers start..end-1; frees each block once its last number is placed."""
    while start < end:  # np.take makes an int64 copy of the numbers: a slice at a time keeps it small
        i, at = divmod(start, block)
        take = min(block - at, end - start, SLICE)
        np.take(lookup, blocks[i][at: at + take], out=out[:take], mode="clip")  # clip: no buffered copy
        out, start = out[take:], start + take
        if at + take == block:
            blocks[i] = None


def tokenize_bpe(config: DataConfig, files: list[Path], chunk_bytes: int = CHUNK_BYTES, block: int = BLOCK,
                 tokenizer: BPETokenizer | None = None, what: str = "corpus") -> Tokens:
    """The bpe level: each file's validation tail is cut off by bytes (bpe_parts) before anything is learned,
    the merges are learned from the training parts (a pass of their own, unless tokenizer is given), then
    each part is encoded as if whole (bpe.stream_pieces) into blocks of ids. The counts come from the ids."""
    fold = str.lower if config.lowercase else str
    if tokenizer is None:
        with _bar(files, "learning bpe merges") as bar:
            texts = (fold(text) for path in files
                     for part, text in bpe_parts(path, config.val_fraction, chunk_bytes, bar.update, what)
                     if part == "train")
            tokenizer = BPETokenizer.learn(stream_pieces(texts), config.max_vocab, config.lowercase, config.min_count)
    blocks: dict[str, list] = {"train": [], "val": []}
    n, seen = {"train": 0, "val": 0}, {"train": 0, "val": 0, "text": False}

    def read(group) -> Iterator[str]:  # one part's texts, their characters counted as they go by
        for part, text in group:
            seen[part] += len(text)
            seen["text"] = seen["text"] or bool(text.strip())
            yield fold(text)

    with _bar(files, "tokenizing") as bar:
        for path in files:
            for part, group in itertools.groupby(bpe_parts(path, config.val_fraction, chunk_bytes, bar.update, what),
                                                 key=lambda item: item[0]):
                for ids in tokenizer.encode_pieces(stream_pieces(read(group))):
                    n[part] = _append(blocks[part], block, n[part], ids)
    if not seen["text"]:
        raise no_text_error(config.corpus, files, what)
    if not n["val"] and config.val_fraction:
        raise CorpusError(f"no file of corpus {config.corpus} has a line start in its last {config.val_fraction:.0%}, "
                          "where the bpe level's validation text begins; break the text into lines or raise --set "
                          "data.val_fraction")
    train, val = _join(blocks["train"], block, n["train"]), _join(blocks["val"], block, n["val"])
    counts = np.zeros(tokenizer.vocab_size, np.int64)
    for at in range(0, len(train), SLICE):  # bincount makes an int64 copy: a slice at a time keeps it small
        counts += np.bincount(train[at: at + SLICE], minlength=len(counts))
    return Tokens(BPETokenizer(tokenizer.library, config.lowercase, counts.tolist()), train, val, seen["val"])


def bpe_parts(path: Path, val_fraction: float, chunk_bytes: int = CHUNK_BYTES,
              progress=lambda size: None, what: str = "corpus") -> Iterator[tuple[str, str]]:
    """A file's text as ("train", text) pieces, then ("val", text) ones: the validation tail starts at the
    first line start past (1 - val_fraction) of the text's UTF-8 bytes (none after it: no tail), wherever
    the chunks end. progress(bytes) hears of each chunk read."""
    size = _text_bytes(path)
    cut, offset = size - int(round(size * val_fraction)), 0
    part = "train" if cut > 0 else "val"  # val_fraction 1: all of it (a data.val_corpus)
    for text, read in read_chunks(path, chunk_bytes, what):
        progress(read)
        data = text.encode()
        if part == "train" and offset + len(data) > cut:
            end = data.find(b"\n", max(cut - offset - 1, 0)) + 1  # 0: no line starts in this chunk after the cut
            if end:
                yield part, data[:end].decode()
                part, text = "val", data[end:].decode()
        offset += len(data)
        if text:
            yield part, text


def _text_bytes(path: Path) -> int:
    """The UTF-8 size of the file's text as read_chunks gives it: without a BOM, CRLF as LF (the bytes are
    only counted: this reads the file once, quickly)."""
    size, last = path.stat().st_size, b""
    try:
        with open(path, "rb") as f:
            block = f.read(3)
            size -= 3 * (block == b"\xef\xbb\xbf")
            while block:
                size -= (last + block).count(b"\r\n")  # a pair across two blocks is counted once
                last, block = block[-1:], f.read(CHUNK_BYTES)
    except OSError:  # read_chunks names it when it reads the file
        pass
    return size


def _join(blocks: list, block: int, n: int) -> np.ndarray:
    """The first n numbers of blocks as one array; each block is freed once copied."""
    out = np.empty(n, np.int32)
    for i in range(len(blocks)):
        part = blocks[i][: min(block, n - i * block)]
        out[i * block: i * block + len(part)] = part
        blocks[i] = None
    return out
