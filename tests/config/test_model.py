"""The model: section: the recurrent layers' names, as the built model gives them, and the combinations of
model keys that cannot train."""
import pytest

from lstm_textgen.config import ModelConfig, load_config
from lstm_textgen.errors import ConfigError


def test_bidirectional_needs_objective_last():
    with pytest.raises(ConfigError, match="model.bidirectional needs model.objective=last"):
        load_config(None, ["model.bidirectional=true"])
    assert load_config(None, ["model.bidirectional=true", "model.objective=last"]).model.bidirectional


def test_the_layers_named_are_the_layers_the_built_model_has():
    from lstm_textgen.model.stack import build_model

    for rnn, layers in (("lstm", 2), ("gru", 1)):
        config = ModelConfig(rnn=rnn, layers=layers, units=4, dense_units=4)
        model = build_model(config, vocab_size=12, embedding_dim=3)
        weighted = [layer.name for layer in model.layers if layer.weights]
        assert weighted == config.weighted_layers()
        assert config.recurrent_layers() == [f"{rnn}_{i + 1}" for i in range(layers)]


def test_the_model_checks_spell_the_key_as_the_caller_names_it():
    bidirectional = ModelConfig(bidirectional=True)
    assert bidirectional.problems(lambda name: f"model.{name}")[0].startswith("model.bidirectional needs")
    assert bidirectional.problems(lambda name: f"--{name}")[0].startswith("--bidirectional needs")
    assert ModelConfig(bidirectional=True, objective="last").problems(str) == []


@pytest.mark.parametrize("override, message", [
    ("model.rnn=rnn", "model.rnn must be 'lstm' or 'gru', got 'rnn'"),
    ("model.layers=65", "model.layers must be <= 64, got 65"),
    ("model.dense_activation=gelu", "model.dense_activation must be 'relu' or 'linear' or 'tanh'"),
    ("model.init_range=0", "model.init_range must be > 0 or null, got 0"),
    ("model.weight_drop=1", "model.weight_drop must be in [0, 1), got 1"),
    ("model.activation_reg=-1", "model.activation_reg must be >= 0, got -1"),
    ("model.temporal_reg=1,model.objective=last", "model.temporal_reg penalises the change"),
])
def test_bad_model_settings_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, override.split(","))
    assert message in str(info.value)
