"""The word, whitespace and char levels' tokenizer: ids in order of frequency, caps, readable decoding, round
trips on real corpus lines, and its tokenizer.json."""
import json

import pytest

from lstm_textgen.text.corpus import read_text
from lstm_textgen.errors import TokenizerError
from lstm_textgen.text.tokenizer import PAD_ID, UNK_ID
from lstm_textgen.text import load_tokenizer

from conftest import SHARED_DATA, fit_tokenizer


def real_lines(name):
    return [line for line in read_text(SHARED_DATA / name).split("\n") if line.strip()]


def test_special_ids_and_frequency_order():
    tok = fit_tokenizer(["b a b c b a"], "word", max_vocab=None)
    assert tok.vocab[:5] == ["<pad>", "<unk>", "b", "a", "c"]
    assert tok.counts[2:] == [3, 2, 1]
    assert tok.encode("a zebra") == [3, UNK_ID]
    assert PAD_ID not in tok.encode("b a c")


def test_max_vocab_and_min_count_send_rare_words_to_unk():
    tok = fit_tokenizer(["a a a b b c"], "word", max_vocab=4, min_count=1)
    assert tok.vocab == ["<pad>", "<unk>", "a", "b"]
    assert tok.encode("c") == [UNK_ID]
    assert tok.unk_count == 1
    tok = fit_tokenizer(["a a a b b c"], "word", min_count=2)
    assert "c" not in tok.vocab and "b" in tok.vocab


def test_recounted_keeps_every_id_and_counts_another_text():
    from collections import Counter

    base = fit_tokenizer(["b a b c b a"], "word", max_vocab=None)
    counts = Counter({"a": 4, "zebra": 3, "c": 1, "yak": 3, "ox": 1})
    kept = base.recounted(counts)
    assert kept.vocab == base.vocab  # every token at its id
    assert kept.counts == [0, 7, 0, 4, 1] and kept.unk_count == 7  # b unseen; zebra, yak, ox unknown
    assert kept.encode("a zebra") == [3, UNK_ID]


def test_recounted_extend_adds_the_new_tokens_after_the_old_commonest_first_up_to_the_caps():
    from collections import Counter

    base = fit_tokenizer(["b a b c b a"], "word", max_vocab=None)
    counts = Counter({"a": 4, "zebra": 3, "c": 1, "yak": 3, "ox": 1, "<unk>": 2})
    grown = base.recounted(counts, extend=True)
    assert grown.vocab == base.vocab + ["zebra", "yak", "ox"]  # ties in first-seen order; a literal <unk> stays unknown
    assert grown.counts == [0, 2, 0, 4, 1, 3, 3, 1]
    assert base.recounted(counts, extend=True, min_count=2).vocab == base.vocab + ["zebra", "yak"]
    assert base.recounted(counts, extend=True, max_vocab=6).vocab == base.vocab + ["zebra"]
    assert base.recounted(counts, extend=True, max_vocab=3).vocab == base.vocab  # already past the cap
    assert base.recounted(counts, extend=True, max_vocab=6).unk_count == 2 + 3 + 1  # <unk>, yak, ox


def test_lowercase_folds_case():
    assert fit_tokenizer(["The the THE"], "word", lowercase=True).vocab[2:] == ["the"]
    assert len(fit_tokenizer(["The the THE"], "word", lowercase=False).vocab) == 5


def test_word_tokens_split_punctuation_clitics_and_keep_newlines():
    tok = fit_tokenizer([""], "word", lowercase=False)
    assert list(tok.split('He said, "Don\'t go--now!"\nThe king\'s men.')) == [
        "He", "said", ",", "``", "Do", "n't", "go", "--", "now", "!", '"', "\n",
        "The", "king", "'s", "men", "."]


@pytest.mark.parametrize("text", [
    "He said, \"Don't go--now!\" (quietly)\nThe king's men'll come.",
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.",
    "'Tis true; o' the city... what?! [Exit.]",
    "It costs $5 (or 10%): well-known, isn't it?",
])
def test_decode_gives_back_normally_spaced_text(text):
    tok = fit_tokenizer([text], "word", lowercase=False)
    assert tok.decode(tok.encode(text)) == text


def test_decode_lowercases_when_lowercase_is_on():
    tok = fit_tokenizer(["Hello, World!"], "word", lowercase=True)
    assert tok.decode(tok.encode("Hello, World!")) == "hello, world!"


@pytest.mark.parametrize("name, share", [
    ("tinyshakespeare.txt", 0.995), ("nietzsche.txt", 0.96), ("warpeace_input.txt", 0.99)])
def test_real_lines_round_trip(name, share):
    lines = real_lines(name)
    tok = fit_tokenizer(lines, "word", lowercase=False)
    same = sum(tok.decode(tok.encode(line)) == line for line in lines)
    assert same / len(lines) >= share, f"only {same} of {len(lines)} lines round-trip"


def test_known_shakespeare_lines_round_trip_exactly():
    lines = real_lines("tinyshakespeare.txt")
    tok = fit_tokenizer(lines, "word", lowercase=False)
    for line in ["Before we proceed any further, hear me speak.", "We know't, we know't.",
                 "What shouts are these? The other side o' the city", "You are all resolved rather to die than to famish?"]:
        assert line in lines
        assert tok.decode(tok.encode(line)) == line


def test_char_level_round_trips_any_text():
    text = read_text(SHARED_DATA / "nietzsche.txt")[:20000]
    tok = fit_tokenizer([text], "char", lowercase=False)
    assert tok.decode(tok.encode(text)) == text
    assert tok.level == "char" and len(tok.encode("abc")) == 3


def test_encode_array_matches_encode():
    tok = fit_tokenizer(["a b c a"], "word")
    assert tok.encode_array("a b zz").tolist() == tok.encode("a b zz")
    assert tok.encode_array("a").dtype.name == "int32"


def test_literal_special_tokens_in_text_are_not_the_special_ids():
    tok = fit_tokenizer(["<pad> <unk> word"], "word", lowercase=False)
    assert tok.vocab.count("<pad>") == 1 and tok.vocab.count("<unk>") == 1


def test_save_and_load_round_trip(tmp_path):
    tok = fit_tokenizer(["Some text, here.\nMore text."], "word", lowercase=False, max_vocab=50)
    tok.save(tmp_path / "tokenizer.json", "0.1.0")
    raw = json.loads((tmp_path / "tokenizer.json").read_text())
    assert raw["schema"] == 1 and raw["lstm_textgen_version"] == "0.1.0"
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert (loaded.vocab, loaded.counts, loaded.level, loaded.lowercase) == (tok.vocab, tok.counts, "word", False)


@pytest.mark.parametrize("content, message", [
    ("{", "unreadable or damaged"),
    ('{"schema": 99, "lstm_textgen_version": "9.0"}', "schema 99"),
    ('{"schema": 1, "vocab": ["a"], "counts": [1], "level": "word", "lowercase": true}', "not a valid tokenizer"),
])
def test_bad_tokenizer_files_are_refused(tmp_path, content, message):
    path = tmp_path / "tokenizer.json"
    path.write_text(content)
    with pytest.raises(TokenizerError, match=message):
        load_tokenizer(path)


PTB_LINES = " aer banknote berlitz <unk> calloway\n the n.v. 's <unk> , said mr. <unk>\n\n"


def test_whitespace_level_splits_on_spaces_only_with_a_newline_token_per_line():
    tok = fit_tokenizer([PTB_LINES], "whitespace", max_vocab=None)
    tokens = list(tok.split(PTB_LINES))
    assert tokens == ["aer", "banknote", "berlitz", "<unk>", "calloway", "\n", "the", "n.v.", "'s", "<unk>", ",",
                      "said", "mr.", "<unk>", "\n", "\n"]  # no punctuation split; the empty line is a newline too
    assert len(tok.encode(PTB_LINES)) == 16


def test_whitespace_level_unk_in_the_text_is_the_reserved_unknown_id():
    tok = fit_tokenizer([PTB_LINES], "whitespace", max_vocab=None)
    ids = tok.encode(PTB_LINES)
    assert ids.count(UNK_ID) == 3 and tok.vocab.count("<unk>") == 1
    assert tok.unk_count == 3 and tok.counts[UNK_ID] == 3  # counted as the unknown token, not a second word
    assert tok.encode("<pad>") == [UNK_ID]  # a literal <pad> never becomes the padding id


def test_whitespace_level_decode_joins_with_spaces_and_newlines():
    tok = fit_tokenizer([PTB_LINES], "whitespace", max_vocab=None)
    normal = "aer banknote berlitz <unk> calloway\nthe n.v. 's <unk> , said mr. <unk>\n\n"
    assert tok.decode(tok.encode(PTB_LINES)) == normal
    assert tok.decode(tok.encode(normal)) == normal


def test_whitespace_level_is_saved_in_tokenizer_json(tmp_path):
    tok = fit_tokenizer([PTB_LINES], "whitespace")
    tok.save(tmp_path / "tokenizer.json", "0.1.0")
    assert json.loads((tmp_path / "tokenizer.json").read_text())["level"] == "whitespace"
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert loaded.level == "whitespace" and loaded.encode(PTB_LINES) == tok.encode(PTB_LINES)


def test_characters_inside_unknown_tokens_and_from_a_token_on():
    tok = fit_tokenizer(["the cat sat"], "word")
    assert tok.unknown_chars("The zebra sat, quietly") == len("zebra") + len(",") + len("quietly")
    assert tok.chars_from("the  cat sat\n", 1) == len("cat sat\n") and tok.chars_from("the cat", 5) == 0
    assert fit_tokenizer(["ab"], "char").chars_from("abc", 1) == 2
