"""The whole Config: combinations of keys from different sections refused naming both, the ones that may go
together accepted, and the run directory a config means."""
from pathlib import Path

import pytest

from lstm_textgen.config import Config, DataConfig, TrainConfig, load_config
from lstm_textgen.errors import ConfigError


@pytest.mark.parametrize("overrides, message", [
    (["model.tie_weights=true", "model.dense_units=32", "embedding.dim=16"],
     "model.tie_weights needs model.dense_units equal to embedding.dim"),
    (["model.tie_weights=true", "model.dense_units=3", "embedding.dim=3", "embedding.path=v.txt",
      "embedding.trainable=false"], "model.tie_weights with a frozen pretrained embedding"),
    (["train.stateful=true", "model.objective=last"], "train.stateful needs model.objective=sequence"),
    (["train.stateful=true", "train.distribute=mirrored"], "train.stateful carries one recurrent state"),
    (["train.global_clipnorm=0.25"], "train.clipnorm and train.global_clipnorm are both set"),
])
def test_refused_combinations_name_both_keys(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_allowed_combinations_of_the_new_keys():
    config = load_config(None, ["model.tie_weights=true", "model.dense_units=16", "embedding.dim=16",
                                "train.stateful=true", "train.max_minutes=0.5", "train.reduce_lr_patience=1"])
    assert config.model.tie_weights and config.train.stateful and config.train.max_minutes == 0.5


@pytest.mark.parametrize("corpus, run_dir", [
    ("data/tinyshakespeare.txt", "runs/tinyshakespeare"),
    ("books/", "runs/books"),
    ("books/*.txt", "runs/books"),
    ("my notes (2024).md", "runs/my_notes_2024"),
    ("../", None),  # the folder above the one the command runs in (the tests run in a tmp_path)
])
def test_the_run_directory_is_one_folder_under_runs_named_after_the_corpus(corpus, run_dir):
    run_dir = run_dir or "runs/" + Path.cwd().parent.name
    assert Config(data=DataConfig(corpus=corpus)).run_dir == Path(run_dir)
    assert Config(data=DataConfig(corpus=corpus), train=TrainConfig(run_dir="elsewhere/r")).run_dir == Path(
        "elsewhere/r")


def test_combinations_are_judged_once_every_value_is_valid():
    """A bad value is reported alone: its combinations with other keys would only repeat it."""
    with pytest.raises(ConfigError) as info:
        load_config(None, ["model.tie_weights=true", "model.dense_units=0", "embedding.dim=16"])
    assert "model.dense_units must be >= 1" in str(info.value) and "tie_weights" not in str(info.value)


def test_to_dict_holds_every_section_by_name():
    raw = Config().to_dict()
    assert list(raw) == ["data", "embedding", "model", "train", "generate"]
    assert raw["model"]["units"] == 128 and raw["generate"]["stop"] == []
