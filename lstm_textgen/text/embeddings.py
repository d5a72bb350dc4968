"""Pretrained word vectors -> an embedding matrix whose row i is token id i, rows of words the file lacks filled
as the config asks, and the coverage figures (numpy only; vectors.py reads the file)."""
from __future__ import annotations

import numpy as np

from lstm_textgen.config import EmbeddingConfig
from lstm_textgen.errors import EmbeddingError
from lstm_textgen.text.tokenizer import PAD_ID, Tokenizer
from lstm_textgen.text.vectors import Reading, read_vectors

TOP_MISSING = 20


def load_embedding_matrix(config: EmbeddingConfig, tokenizer: Tokenizer, train_ids: np.ndarray,
                          seed: int = 0) -> tuple[np.ndarray, dict]:
    """The (vocab_size, config.dim) float32 matrix for config.path, and its coverage figures.

    Row 0 (<pad>) is zeros. Rows of words the file lacks are zeros with missing=zeros (Masking then skips
    those steps, as in the reference model; <unk> is one of them) or, with missing=random, normal vectors
    with the found rows' standard deviation drawn from `seed` (<unk> included). Shares count the vocabulary
    without <pad> and <unk>; the token share is the share of train_ids whose row was found.
    """
    rows, reading = read_vectors(config.path, config.dim, tokenizer)
    found = rows.match > 0
    if not found.any():
        raise EmbeddingError(f"none of the {tokenizer.vocab_size - 2:,} vocabulary words is among the "
                             f"{reading.words:,} words of {config.path}; check the file is in the corpus's "
                             "language and case (data.lowercase), or set --set embedding.path=null")
    matrix = rows.matrix
    if config.missing == "random":
        fill = ~found
        fill[PAD_ID] = False
        scale = float(matrix[found].std()) or 0.1  # 0.1 only if every found row is one constant
        # Drawn for every row in id order, so a row's vector depends on the seed and its id, not the file.
        noise = np.random.default_rng(seed).normal(0.0, scale, matrix.shape).astype(np.float32)
        matrix[fill] = noise[fill]
    return matrix, _coverage(reading, tokenizer, found, train_ids)


def _coverage(reading: Reading, tokenizer: Tokenizer, found: np.ndarray, train_ids: np.ndarray) -> dict:
    """The figures for metrics.json (plain ints, floats and strings) and the one-line summary."""
    counts = np.bincount(np.asarray(train_ids, np.int64), minlength=tokenizer.vocab_size)
    words = np.arange(2, tokenizer.vocab_size)  # the vocabulary without <pad> and <unk>
    missing = words[~found[words]]
    top = missing[np.argsort(-counts[missing], kind="stable")[:TOP_MISSING]]  # ties: the lower, commoner id
    n_found, n_words = int(found[words].sum()), len(words)
    vocab_share = n_found / n_words if n_words else 0.0
    token_share = float(counts[found].sum() / len(train_ids)) if len(train_ids) else 0.0
    summary = (f"embeddings: {n_found:,} of {n_words:,} vocabulary words found ({_percent(vocab_share)}), "
               f"covering {_percent(token_share)} of corpus tokens")
    if len(missing):
        shown = ", ".join(_printable(tokenizer.vocab[i]) for i in top)
        summary += f"; {len(missing):,} missing, most frequent: {shown}"
    if reading.skipped:
        unit = "record" if reading.kind == "binary" else "line"
        summary += (f"; skipped {reading.skipped:,} malformed {unit}{'s' if reading.skipped > 1 else ''} "
                    f"(first: {unit} {reading.first_skipped:,})")
    if reading.duplicates:
        summary += f"; {reading.duplicates:,} repeated words (first vector kept)"
    return {
        "path": reading.path, "format": reading.format, "file_dim": reading.dim, "file_words": reading.words,
        "vocab_words_found": n_found, "vocab_words": n_words, "vocab_share": vocab_share,
        "token_share": token_share, "missing_words": int(len(missing)),
        "top_missing": [tokenizer.vocab[i] for i in top], "skipped_lines": reading.skipped,
        "first_skipped_line": reading.first_skipped, "duplicates": reading.duplicates, "summary": summary,
    }


def _percent(share: float) -> str:
    """share as "94.1%", never rounded up to 100.0% or down to 0.0% when it is not exactly that."""
    text = f"{share:.1%}"
    if text == "100.0%" and share < 1.0:
        return ">99.9%"
    if text == "0.0%" and share > 0.0:
        return "<0.1%"
    return text


def _printable(token: str) -> str:
    return token if token.isprintable() and token.strip() == token else repr(token)  # "\n" shows as '\n'
