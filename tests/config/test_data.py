"""The data: and embedding: sections: the corpus named, the bpe level's vocabulary floor and its single way of
fine-tuning, and each message spelling the key as the caller names it."""
import pytest

from lstm_textgen.config import DataConfig, EmbeddingConfig, load_config
from lstm_textgen.errors import ConfigError


def key(name: str) -> str:
    return f"data.{name}"


def test_the_defaults_have_no_problem():
    assert DataConfig().problems(key) == []


@pytest.mark.parametrize("changes, message", [
    ({"corpus": "  "}, "data.corpus must name a file, folder or glob, got an empty string"),
    ({"val_corpus": ""}, "data.val_corpus must name a file, folder or glob, or be null for each file's tail"),
    ({"level": "bpe", "max_vocab": None}, "data.max_vocab is the vocabulary size data.level=bpe learns up to: at least "
                                          "258 (<pad>, <unk> and the 256 bytes), got null"),
    ({"level": "bpe", "max_vocab": 300, "base_vocab": "extend"}, "data.base_vocab=extend adds words to a word, "
                                                                 "whitespace or char vocabulary"),
])
def test_data_problems(changes, message):
    problems = DataConfig(**changes).problems(key)
    assert len(problems) == 1 and problems[0].startswith(message), problems


def test_the_bpe_floor_is_258_and_other_levels_may_go_lower():
    assert DataConfig(level="bpe", max_vocab=258).problems(key) == []
    assert DataConfig(level="char", max_vocab=3).problems(key) == []
    assert DataConfig(level="char", base_vocab="extend").problems(key) == []


@pytest.mark.parametrize("override, message", [
    ("data.window_size=0", "data.window_size must be >= 1, got 0"),
    ("data.val_fraction=0", "data.val_fraction must be between 0 and 1 (exclusive), got 0"),
    ("data.stride=0", "data.stride must be >= 1 or null, got 0"),
    ("data.base_vocab=grow", "data.base_vocab must be 'keep' or 'extend', got 'grow'"),
    ("embedding.dim=0", "embedding.dim must be >= 1, got 0"),
    ("embedding.missing=mean", "embedding.missing must be 'zeros' or 'random', got 'mean'"),
])
def test_bad_data_and_embedding_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value)


def test_the_embedding_learns_from_scratch_by_default():
    embedding = EmbeddingConfig()
    assert embedding.path is None and embedding.trainable and embedding.missing == "zeros"
