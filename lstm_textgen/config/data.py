"""The data: and embedding: sections: where the text comes from, how it becomes tokens and windows, and the
pretrained vectors the embedding may start from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from lstm_textgen.config.setting import setting
from lstm_textgen.config.values import Key

DEFAULT_CORPUS = "data/tinyshakespeare.txt"


@dataclass
class DataConfig:
    corpus: str = setting(DEFAULT_CORPUS, resume=True, finetune="differs",
                          help='a text file, a folder of .txt/.text/.md files, or a glob ("books/*.txt")')
    level: Literal["word", "whitespace", "char", "bpe"] = setting(
        "word", help="word (words and punctuation marks, newlines kept), whitespace (pre-tokenized text: split on "
                     "spaces only, a newline token per line, <unk> = the unknown id), char, or bpe (byte-level subword "
                     "tokens learned on the training split: no unknown token, exact round trip; no embedding.path)")
    lowercase: bool = setting(True, help="fold case before counting and encoding")
    max_vocab: Optional[int] = setting(10000, 3, cap=10_000_000, finetune="extend",
                                       help="vocabulary cap including <pad> and <unk>; null = no cap (bpe: the size it "
                                            "learns up to, at least 258, never null)")
    min_count: int = setting(1, 1, cap=2**31 - 1, finetune="extend",
                             help="drop tokens seen fewer times (they become <unk>; bpe: merges seen fewer times are not "
                                  "learned)")
    window_size: int = setting(20, 1, cap=100_000, finetune="differs", help="tokens of context per training window")
    val_fraction: float = setting(0.1, 0.0, 1.0, low_open=True, high_open=True, finetune="differs",
                                  help="the last 10% of each file (its tokens; bpe: its bytes, from a line start) is "
                                       "validation, never trained on")
    val_corpus: Optional[str] = setting(None, finetune="differs",
                                        help="a separate validation text (file, folder or glob): then all of corpus "
                                             "trains and val_fraction is unused")
    stride: Optional[int] = setting(None, 1, cap=100_000, finetune="differs",
                                    help="step between window starts; null = 1 for objective last, window_size for "
                                         "sequence")
    base_vocab: Literal["keep", "extend"] = setting(
        "keep", finetune="own", help="with train.init_from: keep the base run's vocabulary (new words become <unk>), "
                                     "or extend it with the corpus's words that pass min_count, up to max_vocab (word, "
                                     "whitespace and char levels)")

    def problems(self, key: Key) -> list[str]:
        return [message for failed, message in (
            (not self.corpus.strip(), f"{key('corpus')} must name a file, folder or glob, got an empty string"),
            (self.val_corpus is not None and not self.val_corpus.strip(),
             f"{key('val_corpus')} must name a file, folder or glob, or be null for each file's tail; got an empty "
             "string"),
            (self.level == "bpe" and (self.max_vocab or 0) < 258,  # <pad>, <unk> and a token for every byte
             f"{key('max_vocab')} is the vocabulary size data.level=bpe learns up to: at least 258 (<pad>, <unk> and "
             f"the 256 bytes), got {'null' if self.max_vocab is None else self.max_vocab}; set e.g. --set "
             f"{key('max_vocab')}=4000"),
            (self.level == "bpe" and self.base_vocab == "extend",
             f"{key('base_vocab')}=extend adds words to a word, whitespace or char vocabulary; the bpe level encodes "
             f"any text with the base run's merges: set --set {key('base_vocab')}=keep")) if failed]


@dataclass
class EmbeddingConfig:
    path: Optional[str] = setting(None, help="pretrained vectors (GloVe / word2vec / fastText text, .gz ok); null = "
                                             "learn from scratch")
    dim: int = setting(100, 1, cap=65_536, help="embedding size; must equal the vector file's dimension when path is "
                                                "set")
    trainable: bool = setting(True, finetune="differs",
                              help="train the pretrained matrix too (false freezes it); without a path it is always "
                                   "trained")
    missing: Literal["zeros", "random"] = setting("zeros", help="rows for words absent from the file: zeros (masked, "
                                                                "skipped) or random")
