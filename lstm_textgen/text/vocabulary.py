"""A fine-tuned run's vocabulary: the new corpus tokenized in its base run's vocabulary, kept (new words become
<unk>) or extended by the new words that pass data.min_count; a bpe base encodes any text with its merges.
What the base did not know is noted for the line shown before training and for the run's origin record."""
from __future__ import annotations

from collections import Counter

from lstm_textgen.config import DataConfig
from lstm_textgen.errors import CorpusError
from lstm_textgen.text.bpe import BPETokenizer
from lstm_textgen.text.tokenizer import UNK_ID, Tokenizer
from lstm_textgen.text.tokens import Tokens, tokenize_corpus
from lstm_textgen.text.words import WordTokenizer
from lstm_textgen.config.values import shown

SHOWN_WORDS = 10  # unknown words named before training


def in_base_vocabulary(base: Tokenizer, data: DataConfig) -> tuple[Tokens, "BaseVocabulary"]:
    """The corpus of data tokenized in base's vocabulary (kept, or extended under data.base_vocab=extend), and
    what that vocabulary made of it (summary, unknown_share, mode)."""
    vocabulary = BaseVocabulary(base, data)
    if isinstance(base, BPETokenizer):
        return tokenize_corpus(data, like=base), vocabulary
    return tokenize_corpus(data, vocabulary=vocabulary), vocabulary


class BaseVocabulary:
    """tokenize_corpus's vocabulary for a fine-tuned run: from the new corpus's token counts, the base's
    vocabulary kept, or extended by the new tokens that pass data.min_count (up to data.max_vocab); it notes
    what the base did not know, for the line shown before training. A bpe base knows every text."""

    def __init__(self, base: Tokenizer, data: DataConfig):
        self.base, self.data, self.mode = base, data, data.base_vocab
        self.unknown_share = 0.0
        self.summary = "vocabulary: the base run's bpe merges (any text encodes, no token is unknown)"

    def __call__(self, counts: Counter) -> WordTokenizer:
        base, data = self.base, self.data
        tokenizer = base.recounted(counts, self.mode == "extend", data.max_vocab, data.min_count)
        total = sum(counts.values())
        unknown = sum(c for t, c in counts.items() if base.index.get(t, UNK_ID) == UNK_ID)
        if self.mode == "keep" and unknown == total:
            raise CorpusError(f"the base run knows no {base.level}-level token of {shown(data.corpus)}, so under "
                              "data.base_vocab=keep every token would be <unk>; set --set data.base_vocab=extend, or "
                              "start from a run trained on text like it")
        self.unknown_share = unknown / total
        left = Counter({t: c for t, c in counts.items() if tokenizer.index.get(t, UNK_ID) == UNK_ID})
        commonest = ", ".join(f"{shown(t)} ({c:,})" for t, c in left.most_common(SHOWN_WORDS))
        if self.mode == "keep":
            self.summary = (f"vocabulary: the base run's {base.vocab_size:,} tokens, kept; {self.unknown_share:.1%} of "
                            f"the corpus's {total:,} tokens are unknown to it and become <unk>")
        else:
            self.summary = (f"vocabulary: the base run's {base.vocab_size:,} tokens and "
                            f"{tokenizer.vocab_size - base.vocab_size:,} new ones (data.min_count={data.min_count}, "
                            f"data.max_vocab={data.max_vocab}); {self.unknown_share:.1%} of the corpus's {total:,} "
                            f"tokens were unknown to the base, {sum(left.values()) / total:.1%} stay <unk>")
        self.summary += f"; commonest unknown: {commonest}" if commonest else ""
        return tokenizer
