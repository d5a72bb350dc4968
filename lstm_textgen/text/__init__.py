"""Text in: corpus files read, tokenized at every level, cached; pretrained vectors read into the embedding matrix.

load_tokenizer() reads any level's tokenizer.json into the tokenizer of its level (text/tokenizer.py: the
interface they all offer)."""
from __future__ import annotations

from pathlib import Path

from lstm_textgen.atomic import read_json
from lstm_textgen.errors import TokenizerError
from lstm_textgen.text.bpe import BPETokenizer
from lstm_textgen.text.tokenizer import SCHEMA_VERSION, Tokenizer
from lstm_textgen.text.words import WordTokenizer
from lstm_textgen.config.values import shown


def load_tokenizer(path: Path) -> Tokenizer:
    """The tokenizer a tokenizer.json holds, whatever its level; TokenizerError when it is not one."""
    raw = read_json(path, TokenizerError)
    if raw.get("schema") != SCHEMA_VERSION:
        made, schema = raw.get("lstm_textgen_version", "an unknown version"), raw.get("schema")
        raise TokenizerError(f"{path} has tokenizer schema {shown(schema)} (written by lstm-textgen "
                             f"{shown(made)}); this version reads schema {SCHEMA_VERSION}")
    kind = BPETokenizer if raw.get("level") == BPETokenizer.level else WordTokenizer
    return kind.from_json(raw, path)
