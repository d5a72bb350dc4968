"""A fine-tuned run's vocabulary: the new corpus in its base run's vocabulary, kept (what the base lacks is <unk>,
its share said) or extended by the new tokens that pass data.min_count up to data.max_vocab; a corpus the base
knows nothing of is refused under keep; a bpe base encodes any text with its merges."""
import pytest

from lstm_textgen.config import DataConfig
from lstm_textgen.errors import CorpusError
from lstm_textgen.text.bpe import BPETokenizer, pieces
from lstm_textgen.text.tokenizer import UNK_ID
from lstm_textgen.text.vocabulary import in_base_vocabulary

from conftest import fit_tokenizer

BASE_TEXT = "the cat sat on the mat .\n" * 20
NEW_TEXT = "the dog sat on the log . the dog ran .\n" * 10  # 12 tokens a line, 4 of them new (dog twice)


def corpus(tmp_path, text=NEW_TEXT):
    (tmp_path / "new.txt").write_text(text)
    return str(tmp_path / "new.txt")


def test_keep_encodes_the_new_words_as_unknown_and_says_how_many(tmp_path):
    base = fit_tokenizer([BASE_TEXT])
    tokens, vocabulary = in_base_vocabulary(base, DataConfig(corpus=corpus(tmp_path), val_fraction=0.1))
    assert tokens.tokenizer.vocab == base.vocab and vocabulary.mode == "keep"
    ids = list(tokens.train) + list(tokens.val)
    assert vocabulary.unknown_share == pytest.approx(ids.count(UNK_ID) / len(ids)) == pytest.approx(40 / 120)
    assert vocabulary.summary.startswith(f"vocabulary: the base run's {base.vocab_size} tokens, kept; 33.3% of the "
                                         "corpus's 120 tokens are unknown to it and become <unk>")
    assert "commonest unknown: 'dog' (20), 'log' (10), 'ran' (10)" in vocabulary.summary


@pytest.mark.parametrize("min_count, max_vocab, added", [(1, None, ["dog", "log", "ran"]), (11, None, ["dog"]),  # base: 9 tokens
                                                         (1, 10, ["dog"])])
def test_extend_adds_the_new_words_that_pass_min_count_up_to_max_vocab(tmp_path, min_count, max_vocab, added):
    base = fit_tokenizer([BASE_TEXT])
    data = DataConfig(corpus=corpus(tmp_path), base_vocab="extend", min_count=min_count, max_vocab=max_vocab)
    tokens, vocabulary = in_base_vocabulary(base, data)
    assert tokens.tokenizer.vocab == base.vocab + added  # every base id where it was
    assert f"and {len(added)} new ones" in vocabulary.summary


def test_keep_refuses_a_corpus_the_base_knows_nothing_of(tmp_path):
    with pytest.raises(CorpusError, match="the base run knows no word-level token of .* set --set "
                                          "data.base_vocab=extend"):
        in_base_vocabulary(fit_tokenizer([BASE_TEXT]), DataConfig(corpus=corpus(tmp_path, "zebra yak " * 30)))


def test_a_bpe_base_encodes_any_text_with_its_merges(tmp_path):
    base = BPETokenizer.learn(pieces(BASE_TEXT), 300, lowercase=True)
    tokens, vocabulary = in_base_vocabulary(base, DataConfig(corpus=corpus(tmp_path), level="bpe", max_vocab=300))
    assert tokens.tokenizer.vocab == base.vocab and UNK_ID not in tokens.train
    assert vocabulary.unknown_share == 0 and "bpe merges" in vocabulary.summary
