"""How much of a generated text is copied from the training corpus: n-gram copy rates and the longest copied span.

Exact (no hashing): the training token ids are indexed once by token, and each position of the text is
matched against every place its token occurs, narrowing the candidates a token at a time.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from lstm_textgen.errors import CheckpointError, TextgenError
from lstm_textgen.run.files import token_file
from lstm_textgen.config.values import shown

DEFAULT_NS = (4, 8)
_FEW = 8  # with this many candidate positions or fewer, compare whole runs instead of token by token


class CorpusIndex:
    """The training token ids and their positions sorted by token id: where any span occurs, found fast."""

    def __init__(self, ids: np.ndarray):
        self.ids = np.ascontiguousarray(ids, dtype=np.int32)  # reads a memory-mapped array into memory once
        self.order = np.argsort(self.ids, kind="stable")  # positions grouped by token, ascending within each
        self.sorted_ids = self.ids[self.order]

    def match_lengths(self, text: Sequence[int]) -> np.ndarray:
        """For each position i of text, the largest l such that text[i:i+l] occurs verbatim in the corpus."""
        text = np.asarray(text, dtype=np.int64)
        ids, n = self.ids, len(self.ids)
        out = np.zeros(len(text), dtype=np.int64)
        for i in range(len(text)):
            token = text[i]
            starts = self.order[np.searchsorted(self.sorted_ids, token, "left"):
                                np.searchsorted(self.sorted_ids, token, "right")]
            length = 1 if starts.size else 0  # every position in starts begins a match of text[i:i+length]
            while starts.size > _FEW and i + length < len(text):  # narrow many candidates a token at a time
                starts = starts[starts + length < n]
                starts = starts[ids[starts + length] == text[i + length]]
                length += 1
            if not starts.size:  # the last token added matched nowhere
                length -= 1 if length else 0
            elif i + length < len(text):  # a few candidates left: compare each one's whole remaining run
                rest = text[i + length:]
                length += max(_common_prefix(ids[p + length:p + length + len(rest)], rest) for p in starts)
            out[i] = length
        return out


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading elements a and b share (a may be the shorter)."""
    equal = a == b[:len(a)]
    return len(a) if equal.all() else int(equal.argmin())


def novelty(generated: Sequence[int], corpus: CorpusIndex, seed: Sequence[int] = (),
            ns: Sequence[int] = DEFAULT_NS) -> dict:
    """Copy rates and the longest copied span of a continuation, against the training corpus.

    copy_rate[n]: the share of the n-grams of seed + generated that contain at least one generated token
    (one per generated token, once the text is n long) and occur verbatim in the training tokens. Seed
    tokens count only inside such n-grams, so a copied seed alone does not raise it; continuing a
    corpus phrase from the seed does. None when the text has no such n-gram.
    longest_copied_span: the most consecutive generated tokens that occur verbatim in the training
    tokens (seed excluded); longest_copied_start is where they begin in the continuation.
    """
    seed, generated = list(seed), list(generated)
    text = seed + generated
    matched = corpus.match_lengths(text)
    rates, counts = {}, {}
    for n in ns:
        starts = np.arange(max(0, len(seed) - n + 1), max(len(text) - n + 1, 0))
        counts[n] = int(len(starts))
        rates[n] = float(np.mean(matched[starts] >= n)) if len(starts) else None
    tail = matched[len(seed):]  # a match from a generated position can only run over generated tokens
    start = int(np.argmax(tail)) if len(tail) else 0
    longest = int(tail[start]) if len(tail) else 0
    return {"copy_rate": rates, "ngrams": counts, "longest_copied_span": longest, "longest_copied_start": start}


def load_corpus_index(run) -> CorpusIndex:
    """The index of a run's training tokens, from the cache train wrote (tokens/train.npy)."""
    path = token_file(run.run_dir, "train")
    try:
        ids = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing, so novelty cannot be measured: it holds the tokenized training "
                              "corpus that train writes; retrain the run to make it") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} is unreadable ({type(e).__name__}); retrain the run to rewrite it") from None
    return CorpusIndex(ids)


def parse_ns(text: str) -> tuple[int, ...]:
    """'4,8' -> (4, 8); refuses anything but positive whole numbers."""
    try:
        ns = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        ns = ()
    if not ns or any(n < 1 for n in ns):
        raise TextgenError(f"--novelty takes n-gram sizes such as 4,8 (whole numbers >= 1), got {shown(text)}")
    return tuple(sorted(set(ns)))


def sample_novelty(run, samples: list, ns: Sequence[int] = DEFAULT_NS) -> list[dict]:
    """novelty() of each generated Sample of run, for printing or JSON (n as string keys, the copied text)."""
    corpus = load_corpus_index(run)
    reports = []
    for sample in samples:
        report = novelty(sample.tokens, corpus, run.tokenizer.encode(sample.seed), ns)
        start, length = report.pop("longest_copied_start"), report["longest_copied_span"]
        reports.append({"copy_rate": {str(n): rate for n, rate in report["copy_rate"].items()},
                        "ngrams": {str(n): count for n, count in report["ngrams"].items()},
                        "longest_copied_span": length,
                        "longest_copied_text": run.tokenizer.decode(sample.tokens[start:start + length])})
    return reports


def format_novelty(report: dict) -> str:
    """One line: 'novelty: copy rate 4-grams 62.5%, 8-grams 10.0%; longest copied span 9 tokens: "..."'."""
    rates = ", ".join(f"{n}-grams {'-' if rate is None else f'{rate:.1%}'}" for n, rate in report["copy_rate"].items())
    text = report["longest_copied_text"].replace("\n", "\\n")
    span = report["longest_copied_span"]
    return f"novelty: copy rate {rates}; longest copied span {span} token{'s' if span != 1 else ''}" + (
        f': "{text.strip()}"' if span else "")
