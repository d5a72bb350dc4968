"""load_config(): defaults <- a YAML file <- --set <- flags, each value converted to its declared type, every
problem raised at once in one line that names the key as the user typed it; the shipped configs load."""
from pathlib import Path

import pytest

from lstm_textgen.config import Config, load_config
from lstm_textgen.errors import ConfigError

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
    ("generate.temperature=-1", "generate.temperature must be >= 0"),
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


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    load_config(path)


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
