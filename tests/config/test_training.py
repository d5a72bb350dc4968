"""The train: section: a batch size that is a number or auto, the checks across train keys (one way to clip,
one device for streams carried across batches, a decay that falls), and the sample seed as plain text."""
import pytest

from lstm_textgen.config import TrainConfig, load_config
from lstm_textgen.errors import ConfigError


def key(name: str) -> str:
    return f"train.{name}"


def test_the_defaults_have_no_problem():
    assert TrainConfig().problems(key) == []


@pytest.mark.parametrize("changes, message", [
    ({"global_clipnorm": 0.25}, "train.clipnorm and train.global_clipnorm are both set"),
    ({"sample_seed": " "}, "train.sample_seed must be a phrase, or null for the training text's first words"),
    ({"sample_seed": "the \x1b[2J end"}, "train.sample_seed holds"),
    ({"stateful": True, "distribute": "mirrored"}, "train.stateful carries one recurrent state per stream on one "
                                                   "device"),
    ({"lr_decay": "cosine", "learning_rate": 1e-3, "min_learning_rate": 1e-3}, "train.lr_decay falls from "
                                                                              "train.learning_rate 0.001 to "
                                                                              "train.min_learning_rate 0.001"),
])
def test_train_problems(changes, message):
    problems = TrainConfig(**changes).problems(key)
    assert len(problems) == 1 and problems[0].startswith(message), problems


def test_one_clip_and_a_falling_decay_pass():
    assert TrainConfig(clipnorm=None, global_clipnorm=0.25).problems(key) == []
    assert TrainConfig(lr_decay="linear", min_learning_rate=1e-5).problems(key) == []


@pytest.mark.parametrize("value, batch_size", [("auto", "auto"), ("AUTO", "auto"), ("16", 16), ("16.0", 16)])
def test_the_batch_size_is_a_number_or_auto(value, batch_size):
    assert load_config(None, [f"train.batch_size={value}"]).train.batch_size == batch_size


@pytest.mark.parametrize("override, message", [
    ("train.epochs=0", "train.epochs must be >= 1, got 0"),
    ("train.lr_decay=step", "train.lr_decay must be 'none' or 'linear' or 'cosine', got 'step'"),
    ("train.ema_momentum=1", "train.ema_momentum must be between 0 and 1 (exclusive), or null for no averaging, got 1"),
    ("train.sample_every=0", "train.sample_every must be >= 1, or null to turn epoch samples off, got 0"),
    ("train.freeze=3", "train.freeze must be"),
])
def test_bad_train_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value)
