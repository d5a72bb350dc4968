"""Config: defaults <- YAML <- --set <- flags, typed conversion, and one-line errors naming the key."""
from pathlib import Path

import pytest
import yaml

from lstm_textgen.config import Config, load_config
from lstm_textgen.config.values import parse_override
from lstm_textgen.config import GenerateConfig
from lstm_textgen.errors import ConfigError, TextgenError

from conftest import REPO


def test_defaults_without_a_file():
    config = load_config()
    assert config == Config()
    assert config.model.objective == "sequence"
    assert config.run_dir == Path("runs/tinyshakespeare")


def test_precedence_file_then_set_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {units: 32, layers: 2}\ntrain: {run_dir: from_file}\n")
    config = load_config(path, ["model.units=64"], {"train.run_dir": "from_flag"})
    assert (config.model.units, config.model.layers, config.train.run_dir) == (64, 2, "from_flag")


@pytest.mark.parametrize("text, key, value", [
    ("model.units=128", "model.units", 128),
    ("train.learning_rate=1e-3", "train.learning_rate", 1e-3),
    ("train.clipnorm=null", "train.clipnorm", None),
    ("model.layers=2", "model.layers", 2),
    ("data.corpus=a=b.txt", "data.corpus", "a=b.txt"),
    ("train.batch_size=auto", "train.batch_size", "auto"),
    ("train.batch_size=Auto", "train.batch_size", "auto"),
    ("train.batch_size=32", "train.batch_size", 32),
])
def test_set_values_are_read_as_yaml_and_converted(text, key, value):
    section, name = key.split(".")
    assert getattr(getattr(load_config(None, [text]), section), name) == value


def test_float_fields_accept_ints_and_int_fields_refuse_fractions():
    assert load_config(None, ["train.learning_rate=1"]).train.learning_rate == 1.0
    with pytest.raises(ConfigError, match=r"model.units must be int, got 1.5"):
        load_config(None, ["model.units=1.5"])


@pytest.mark.parametrize("override, message", [
    ("model.unit=3", "unknown config key 'model.unit' (did you mean 'model.units'?)"),
    ("modle.units=3", "unknown config key 'modle.units' (did you mean 'model.units'?)"),
    ("model.units=abc", "model.units must be int, got 'abc'"),
    ("model.bidirectional=3", "model.bidirectional must be bool, got 3"),
    ("model.rnn=transformer", "model.rnn must be 'lstm' or 'gru', got 'transformer'"),
    ("model.units=0", "model.units must be >= 1, got 0"),
    ("data.max_vocab=2", "data.max_vocab must be >= 3"),
    ("data.val_fraction=1.5", "data.val_fraction must be between 0 and 1"),
    ("data.val_corpus=' '", "data.val_corpus must name a file, folder or glob, or be null"),
    ("model.dropout=-0.1", "model.dropout must be in [0, 1)"),
    ("model.input_dropout=1", "model.input_dropout must be in [0, 1), or null for model.dropout's, got 1"),
    ("generate.top_p=0", "generate.top_p must be in (0, 1]"),
    ("generate.temperature=0", "generate.temperature must be > 0"),
    ("model.units", "--set expects KEY=VALUE"),
    ("train.max_minutes=0", "train.max_minutes must be > 0, or null"),
    ("train.optimizer=rmsprop", "train.optimizer must be 'adam' or 'sgd', got 'rmsprop'"),
    ("train.global_clipnorm=0", "train.global_clipnorm must be > 0 or null"),
    ("train.max_minutes=soon", "train.max_minutes must be float or null, got 'soon'"),
    ("train.stateful=maybe", "train.stateful must be bool"),
    ("train.batch_size=big", "train.batch_size must be int or 'auto', got 'big'"),
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("train.batch_size=2.5", "train.batch_size must be int or 'auto', got 2.5"),
    ("model.tie_weights=2", "model.tie_weights must be bool"),
    ("train.reduce_lr_patience=0", "train.reduce_lr_patience must be >= 1"),
    ("train.reduce_lr_factor=1.0", "train.reduce_lr_factor must be between 0 and 1"),
    ("train.min_learning_rate=-1", "train.min_learning_rate must be >= 0"),
    ("train.reduce_lr_min_delta=-0.1", "train.reduce_lr_min_delta must be >= 0"),
    ("data.level=subword", "data.level must be 'word' or 'whitespace' or 'char' or 'bpe', got 'subword'"),
    ("data.level=bpe,data.max_vocab=null", "data.max_vocab is the vocabulary size data.level=bpe learns up to: at "
                                           "least 258 (<pad>, <unk> and the 256 bytes), got null; set e.g. --set "
                                           "data.max_vocab=4000"),
    ("data.level=bpe,data.max_vocab=257", "at least 258 (<pad>, <unk> and the 256 bytes), got 257"),
    ("data.level=bpe,embedding.path=vectors.txt", "embedding.path gives word vectors, which do not apply to "
                                                  "data.level=bpe's subword tokens; set --set embedding.path=null"),
])
def test_bad_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, override.split(","))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_several_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["model.units=0", "train.epochs=0", "model.colour=red"])
    text = str(info.value)
    assert "model.colour" in text
    with pytest.raises(ConfigError) as info:
        load_config(None, ["model.units=0", "train.epochs=0"])
    assert "model.units" in str(info.value) and "train.epochs" in str(info.value)


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


def test_bidirectional_needs_objective_last():
    with pytest.raises(ConfigError, match="model.bidirectional needs model.objective=last"):
        load_config(None, ["model.bidirectional=true"])
    assert load_config(None, ["model.bidirectional=true", "model.objective=last"]).model.bidirectional


@pytest.mark.parametrize("content, message", [
    ("model: [units\n", "is not valid YAML at line"),
    ("- a\n- b\n", "must be a mapping of sections"),
    ("model: 3\n", "config section 'model' must be a mapping"),
    ("modell: {units: 3}\n", "unknown config section 'modell' (did you mean"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("nope.yaml")


def test_parse_override_keeps_non_yaml_text():
    assert parse_override("data.corpus=[oops") == ("data.corpus", "[oops")


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    load_config(path)


def test_default_yaml_is_the_builtin_defaults():
    assert load_config(REPO / "configs" / "default.yaml") == Config()


def test_every_key_in_shipped_configs_has_a_comment():
    for path in (REPO / "configs").glob("*.yaml"):
        for line in path.read_text().splitlines():
            if line.startswith("  ") and ":" in line and not line.strip().startswith("#"):
                assert "#" in line, f"{path.name}: no comment on {line.strip()!r}"


def test_reference_config_is_the_reference_model():
    config = load_config(REPO / "configs" / "reference.yaml")
    m, e = config.model, config.embedding
    assert (e.dim, m.rnn, m.units, m.layers, m.bidirectional) == (100, "lstm", 64, 1, False)
    assert (m.dropout, m.recurrent_dropout, m.dense_units, m.dense_dropout, m.objective) == (0.1, 0.1, 64, 0.5, "last")
    assert e.trainable is False


def test_saved_config_round_trips(tmp_path):
    from lstm_textgen.run.stamp import config_yaml
    config = load_config(None, ["model.units=33", "data.level=char"])
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(config, "0.1.0"))
    assert yaml.safe_load(path.read_text())["lstm_textgen"]["schema"] == 1
    assert load_config(path) == config


def test_a_fine_tuned_runs_origin_is_saved_after_its_settings_before_the_stamp_and_is_no_setting(tmp_path):
    from lstm_textgen.run.stamp import config_yaml
    config = load_config(None, ["train.init_from=runs/base", "train.freeze=[embedding, lstm_1]",
                                "data.base_vocab=extend"])
    assert config.train.freeze == ["embedding", "lstm_1"]
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(config, "0.1.0", {"init_from": "runs/base", "config_sha256": "ab"}))
    saved = yaml.safe_load(path.read_text())
    assert list(saved)[-2:] == ["origin", "lstm_textgen"] and saved["origin"]["config_sha256"] == "ab"
    assert load_config(path) == config


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@pytest.mark.parametrize("changes, fragment", [
    ({"temperature": 0.0}, "--temperature must be > 0"),
    ({"top_p": 0.0}, "--top-p must be in (0, 1]"),
    ({"top_p": 1.01}, "--top-p must be in (0, 1]"),
    ({"top_k": -1}, "--top-k must be >= 0"),
    ({"length": -1}, "--length must be >= 0"),
    ({"repetition_penalty": 0.0}, "--repetition-penalty must be > 0"),
    ({"no_repeat_ngram_size": -1}, "--no-repeat-ngram-size must be >= 0"),
    ({"min_length": 9, "length": 5}, "--min-length 9 is more than --length 5"),
    ({"stop_newlines": -1}, "--stop-newlines must be >= 0"),
])
def test_settings_refuse_bad_values(changes, fragment):
    with pytest.raises(TextgenError, match=None) as caught:
        GenerateConfig(**changes).check(flag)
    assert fragment in str(caught.value)
