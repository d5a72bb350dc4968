"""The one interface every level offers (text/tokenizer.py's Protocol): word, whitespace, char and bpe tokenizers
each have all of it, share the special ids, stream what decode() gives, save and load back as their own level, and
answer the questions code outside text/ asks instead of asking the level."""
import inspect
import json

import pytest

from lstm_textgen.errors import TokenizerError
from lstm_textgen.text import load_tokenizer
from lstm_textgen.text.bpe import BPETokenizer, pieces
from lstm_textgen.text.tokenizer import PAD, PAD_ID, UNK, UNK_ID, Detokenizer, Tokenizer
from lstm_textgen.text.words import WordTokenizer

from conftest import fit_tokenizer

TEXT = "The cat sat on the mat.\nThe dog sat on the log, and the cat ran.\n" * 5
LEVELS = ("word", "whitespace", "char", "bpe")


def make(level: str):
    if level == "bpe":
        return BPETokenizer.learn(pieces(TEXT), 300, lowercase=True)
    return fit_tokenizer([TEXT], level)


def members(protocol) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")} | set(protocol.__annotations__)


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_has_the_whole_interface(level):
    tok = make(level)
    assert tok.level == level
    for name in members(Tokenizer):
        assert hasattr(tok, name), f"{level}: no {name}"
        declared = getattr(Tokenizer, name, None)
        if inspect.isfunction(declared):  # the same parameters as the Protocol's
            assert list(inspect.signature(getattr(tok, name)).parameters) == list(
                inspect.signature(declared).parameters)[1:], name
    streaming = tok.detokenizer()
    assert all(callable(getattr(streaming, name)) for name in members(Detokenizer))


@pytest.mark.parametrize("level", LEVELS)
def test_the_special_ids_mean_the_same_at_every_level(level):
    tok = make(level)
    assert (tok.vocab[PAD_ID], tok.vocab[UNK_ID]) == (PAD, UNK) and tok.vocab_size == len(tok.vocab)
    assert len(tok.counts) == tok.vocab_size
    ids = tok.encode("the cat sat")
    assert PAD_ID not in ids and list(tok.encode_array("the cat sat")) == ids


@pytest.mark.parametrize("level", LEVELS)
def test_streamed_pieces_add_up_to_decode(level):
    tok = make(level)
    ids = tok.encode("The dog ran on the mat, and the cat sat.\nThe log")
    streaming = tok.detokenizer({})
    peeked = [streaming.peek(i) for i in ids[:1]]
    streamed = "".join(streaming.piece(i) for i in ids) + streaming.flush()
    assert streamed == tok.decode(ids) and peeked[0] == tok.detokenizer().piece(ids[0])


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_saves_and_loads_back_as_itself(level, tmp_path):
    tok = make(level)
    tok.save(tmp_path / "tokenizer.json", "0.2.0")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert type(loaded) is type(tok) and loaded.level == level and loaded.vocab == tok.vocab
    assert loaded.encode(TEXT) == tok.encode(TEXT)


@pytest.mark.parametrize("level, unknown, unit, subword, the", [
    ("word", ["zebra"], "word", False, True), ("whitespace", ["zebra"], "word", False, True),
    ("char", ["z", "b"], "character", False, False), ("bpe", [], "piece", True, True),  # bpe learned "the" whole
])
def test_what_code_outside_text_asks_instead_of_the_level(level, unknown, unit, subword, the):
    tok = make(level)
    assert tok.unknown("the zebra") == unknown and tok.unit == unit and tok.subword is subword
    assert (tok.unknown_chars("the zebra") > 0) == bool(unknown)
    assert tok.has_token("the") is the and tok.has_token("zebra") is False
    assert [i for i, _ in tok.typed("the", " cat")] == tok.encode("the cat")[len(tok.encode("the")):]
    assert tok.seed_tokens > 0 and isinstance(tok.spaces_are_text, bool)


def test_load_tokenizer_refuses_another_schema(tmp_path):
    (tmp_path / "tokenizer.json").write_text(json.dumps({"schema": 9, "level": "word", "lstm_textgen_version": "9.0"}))
    with pytest.raises(TokenizerError, match="has tokenizer schema 9 .written by lstm-textgen '9.0'.; this version "
                                             "reads schema 1"):
        load_tokenizer(tmp_path / "tokenizer.json")


def test_load_tokenizer_reads_every_level(tmp_path):
    tok = fit_tokenizer(["the cat sat"], "whitespace")
    tok.save(tmp_path / "tokenizer.json", "0.1.0")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert isinstance(loaded, WordTokenizer) and (loaded.level, loaded.vocab) == ("whitespace", tok.vocab)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"schema": 1, "level": "bpe"}))
    with pytest.raises(TokenizerError, match="is not a valid bpe tokenizer file"):
        load_tokenizer(tmp_path / "tokenizer.json")
