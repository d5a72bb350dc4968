"""The byte-level BPE tokenizer: exact round trips on any text, pieces that encode as the whole, the streaming
decoder that waits for whole characters, and tokenizer.json in the library's own format."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lstm_textgen.text.bpe import OFFSET, BPETokenizer, pieces, stream_pieces
from lstm_textgen.errors import TokenizerError
from lstm_textgen.text.tokenizer import PAD_ID, UNK_ID
from lstm_textgen.text import load_tokenizer

from conftest import SHARED_DATA

MIXED = ("Café déjà vu, naïve façade — «quoted» 👋🏽 emoji 🎉 and 世界 你好 こんにちは.\r\n\tTabbed line;\n"
         "don't stop, it's 42 o'clock!  Two  spaces.\n")


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    text = (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")[:200_000] + MIXED * 20
    return BPETokenizer.learn(pieces(text), 600, lowercase=False)


unicode_text = st.text(st.characters(codec="utf-8"), max_size=200)  # any character UTF-8 can write
chosen_text = st.lists(st.sampled_from(list("aé€😀👋🏽世\t\r\n  'x.,") + ["\r\n", "🇫🇷", "e\u0301"]),
                       max_size=80).map("".join)  # emoji, accents, CJK, tabs, CRLF, flags, combining marks


@given(text=st.one_of(unicode_text, chosen_text))
@settings(max_examples=300, deadline=None)
def test_decode_of_encode_gives_back_any_text_byte_for_byte(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids).encode("utf-8") == text.encode("utf-8")
    assert PAD_ID not in ids and UNK_ID not in ids and all(OFFSET <= i < tok.vocab_size for i in ids)


def test_the_empty_text_and_the_special_names_are_ordinary_text(tok):
    assert tok.encode("") == [] and tok.decode([]) == ""
    ids = tok.encode("<pad> <unk>")
    assert PAD_ID not in ids and UNK_ID not in ids and tok.decode(ids) == "<pad> <unk>"
    assert tok.unknown("zyzzyva Xqj 𝔘") == [] and tok.unknown_chars("zyzzyva") == 0


def test_lowercase_folds_case_before_encoding(tok):
    lower = BPETokenizer(tok.library, lowercase=True)
    assert lower.decode(lower.encode("The KING’s Café")) == "the king’s café"


@given(text=st.one_of(unicode_text, chosen_text), size=st.integers(1, 12), cuts=st.lists(st.integers(0, 200)))
@settings(max_examples=200, deadline=None)
def test_pieces_encode_exactly_as_the_whole_text(tok, text, size, cuts):
    whole = [i + OFFSET for i in tok.library.encode(text).ids]
    assert "".join(pieces(text, size)) == text
    assert np.concatenate([np.zeros(0, np.int32), *tok.encode_pieces(pieces(text, size))]).tolist() == whole
    parts = [text[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(text)])]
    streamed = list(stream_pieces(parts))
    assert "".join(streamed) == text
    assert np.concatenate([np.zeros(0, np.int32), *tok.encode_pieces(streamed)]).tolist() == whole


def test_a_long_text_is_cut_into_pieces_of_about_the_size():
    text = "word " * 1000 + "世界" * 300  # the CJK run has no place to cut: it stays whole
    sizes = [len(p) for p in pieces(text, 100)]
    assert max(sizes[:-1]) <= 100 and sizes[-1] >= 600 and "".join(pieces(text, 100)) == text


def test_vocabulary_size_counts_pad_unk_and_every_byte(tok):
    assert tok.vocab_size == 600 and tok.vocab[:2] == ["<pad>", "<unk>"]
    assert sorted(b for piece in tok.bytes[OFFSET:OFFSET + 256] for b in piece) == list(range(256))
    assert " the" in tok.vocab  # a common word is one token


def test_the_streaming_decoder_prints_a_split_character_once_it_is_whole(tok):
    byte_id = {piece: i for i, piece in enumerate(tok.bytes) if len(piece) == 1}
    euro = [byte_id[bytes([b])] for b in "€".encode()]  # three tokens, one byte each
    detok = tok.detokenizer()
    assert [detok.piece(i) for i in euro] == ["", "", "€"] and detok.flush() == ""
    assert detok.piece(euro[0]) == "" and detok.flush() == "\ufffd"  # never finished
    detok = tok.detokenizer()
    assert detok.piece(PAD_ID) == "" and detok.piece(UNK_ID) == "" and detok.piece(10**6) == ""
    ids = tok.encode(MIXED)
    detok = tok.detokenizer()
    assert "".join(detok.piece(i) for i in ids) + detok.flush() == MIXED


def test_save_and_load_give_back_the_same_tokenizer_in_the_librarys_format(tok, tmp_path):
    from tokenizers import Tokenizer as Library

    counted = BPETokenizer(tok.library, False, list(range(tok.vocab_size)))
    counted.save(tmp_path / "tokenizer.json", "9.9")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert isinstance(loaded, BPETokenizer) and loaded.level == "bpe"
    assert (loaded.vocab, loaded.counts, loaded.lowercase) == (counted.vocab, counted.counts, False)
    assert loaded.encode(MIXED) == tok.encode(MIXED)
    raw = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    library = Library.from_str(json.dumps(raw["huggingface"]))  # the library reads its part as it is
    assert [i + raw["id_offset"] for i in library.encode(MIXED).ids] == tok.encode(MIXED)


@pytest.mark.parametrize("change", [
    lambda raw: raw.pop("huggingface"),
    lambda raw: raw.update(huggingface={"model": "nonsense"}),
    lambda raw: raw.update(id_offset=0),
    lambda raw: raw.update(counts=[1, 2]),
])
def test_a_damaged_bpe_tokenizer_file_is_refused(tok, tmp_path, change):
    path = tmp_path / "tokenizer.json"
    tok.save(path, "9.9")
    raw = json.loads(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(TokenizerError, match="is not a valid bpe tokenizer file"):
        load_tokenizer(path)


def test_a_bpe_word_ends_where_the_next_token_starts_no_letter_of_it():
    def word_ends(spelled: bytes, following: bytes) -> bool:  # BPETokenizer.word_done on tokens of these bytes
        return BPETokenizer.word_done(SimpleNamespace(bytes=[spelled, following]), [0], 1)

    assert not word_ends(b" ca", b"t") and word_ends(b" cat", b" sat") and word_ends(b" cat", b"\n")
    assert word_ends(b",", b" the") and word_ends(b"\n", b"the")  # a mark or a line end is a word itself
    assert not word_ends(b" ", b"the") and not word_ends(b"", b" the")  # nothing written yet
    assert not word_ends(b" don", b"'t") and word_ends(b" dogs", b"' ")  # an apostrophe inside a word
    assert not word_ends(b" caf", "é".encode()[:1]) and not word_ends(b" caf\xc3", b"\xa9")  # é in two tokens
    assert word_ends(" 世界".encode(), b" .") and word_ends(" café".encode(), b"!")




def test_a_word_that_could_go_on_waits_for_the_next_token():
    bpe = BPETokenizer.word_done
    assert not bpe(SimpleNamespace(bytes=[b" cat"]), [0], None)  # " cat" may become " cats"
    assert bpe(SimpleNamespace(bytes=[b","]), [0], None)  # a mark is a word of its own at once
