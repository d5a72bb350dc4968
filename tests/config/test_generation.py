"""The generate: section: each setting checked against its declared range, with the key spelled as the caller
names it (generate.top_p in a config, --top-p on the command line, top_p over HTTP), and the checks across keys."""
import pytest

from lstm_textgen.config import GenerateConfig
from lstm_textgen.errors import ConfigError, TextgenError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@pytest.mark.parametrize("changes, fragment", [
    ({"temperature": -0.5}, "--temperature must be >= 0"),
    ({"top_p": 0.0}, "--top-p must be in (0, 1]"),
    ({"top_p": 1.01}, "--top-p must be in (0, 1]"),
    ({"top_k": -1}, "--top-k must be >= 0"),
    ({"length": -1}, "--length must be >= 0"),
    ({"repetition_penalty": 0.0}, "--repetition-penalty must be > 0"),
    ({"no_repeat_ngram_size": -1}, "--no-repeat-ngram-size must be >= 0"),
    ({"min_length": 9, "length": 5}, "--min-length 9 is more than --length 5"),
    ({"stop_newlines": -1}, "--stop-newlines must be >= 0"),
    ({"presence_penalty": 2.5}, "--presence-penalty must be in [-2, 2], got 2.5"),
    ({"frequency_penalty": -2.01}, "--frequency-penalty must be in [-2, 2], got -2.01"),
    ({"frequency_penalty": float("inf")}, "--frequency-penalty must be a finite number, got inf"),
])
def test_settings_refuse_bad_values(changes, fragment):
    with pytest.raises(TextgenError, match=None) as caught:
        GenerateConfig(**changes).check(flag)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("changes, message", [
    ({"logit_bias": {5: 101.0}}, "generate.logit_bias[5] must be in [-100, 100], got 101.0"),
    ({"logit_bias": {5: float("nan")}}, "generate.logit_bias[5] must be a finite number, got nan"),
    ({"logit_bias": {-1: 1.0}}, "generate.logit_bias names token id -1; token ids are >= 0"),
    ({"logit_bias": dict.fromkeys(range(301), 1.0)}, "generate.logit_bias may bias at most 300 tokens, got 301"),
    ({"min_p": 1.5}, "generate.min_p must be in [0, 1], got 1.5"),
    ({"min_p": -0.1}, "generate.min_p must be in [0, 1], got -0.1"),
    ({"temperature": float("nan")}, "generate.temperature must be a finite number, got nan"),
    ({"stop": ["ok", ""]}, "generate.stop needs a non-empty TEXT"),
    ({"stop": ["a\x00b"]}, "generate.stop 'a\\x00b' holds"),
    ({"length": 3, "min_length": 4}, "generate.min_length 4 is more than generate.length 3"),
])
def test_a_config_names_the_generate_key(changes, message):
    with pytest.raises(ConfigError) as info:
        GenerateConfig(**changes).check()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_good_settings_pass_and_check_returns_them():
    settings = GenerateConfig(min_p=0.05, top_k=40, stop=["\n\n"], length=-1, min_length=5)  # -1: a range problem
    with pytest.raises(ConfigError, match="generate.length must be >= 0"):
        settings.check()
    settings.length = 10
    assert settings.check() is settings


def test_every_generate_setting_has_a_flag_and_the_http_names_are_distinct():
    from lstm_textgen.config.setting import declared

    rules = declared(GenerateConfig)
    # token ids to biases, and the chat template: a request's or a config's, not a flag's
    assert all(rule.flag and rule.flag.split("/")[-1] == "--" + name.replace("_", "-") for name, _, _, rule in rules
               if name not in ("logit_bias", "chat_template"))
    assert [name for name, _, _, rule in rules if not rule.flag] == ["logit_bias", "chat_template"]
    http = [rule.http for _, _, _, rule in rules if rule.http]
    assert len(http) == len(set(http)) and "max_tokens" in http and "min_p" in http
    assert all(rule.resume for _, _, _, rule in rules)  # generation never changes what a run is


def test_logit_bias_is_a_config_mapping_of_token_ids_checked_against_the_vocabulary():
    from lstm_textgen.config import load_config

    assert load_config(None, ["generate.logit_bias={5: -100, 7: 2.5}"]).generate.logit_bias == {5: -100.0, 7: 2.5}
    with pytest.raises(ConfigError, match="generate.logit_bias must be a mapping of int to float, got 'x'"):
        load_config(None, ["generate.logit_bias=x"])
    assert GenerateConfig(logit_bias={5: 1.0}).vocabulary_problem(6) is None
    assert GenerateConfig(logit_bias={6: 1.0}).vocabulary_problem(6) == (
        "generate.logit_bias names token id 6, outside the run's vocabulary (ids 0 to 5)")
