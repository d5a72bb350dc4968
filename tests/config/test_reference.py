"""configs/default.yaml is written from the settings' declarations: current, complete, and read back as the
built-in defaults; every setting declares its help and policies."""
import yaml

from lstm_textgen.config import SECTIONS, Config, all_keys, load_config
from lstm_textgen.config.reference import defaults_yaml, yaml_value
from lstm_textgen.config.setting import declared

from conftest import REPO

DEFAULT_YAML = REPO / "configs" / "default.yaml"


def test_the_shipped_default_yaml_is_current_and_has_every_key():
    text = DEFAULT_YAML.read_text()
    assert text == defaults_yaml(), "configs/default.yaml is stale: run make configs"
    raw = yaml.safe_load(text)
    assert sorted(f"{s}.{k}" for s, body in raw.items() for k in body) == sorted(all_keys())
    assert load_config(DEFAULT_YAML) == Config()


def test_every_key_carries_its_help_as_a_comment():
    lines = [line for line in DEFAULT_YAML.read_text().splitlines() if line.startswith("  ")]
    assert len(lines) == len(all_keys()) and all("  # " in line and line.split("  # ", 1)[1] for line in lines)


def test_values_read_back_as_the_same_value():
    for value in (1.0e-3, 1e-05, 2.5e10, 0.1, None, True, [], ["a b", "c"], "data/x.txt", "auto", "yes", "1e-3"):
        assert yaml.safe_load(yaml_value(value)) == value, value


def test_every_setting_declares_its_help_and_a_known_policy():
    for section, cls in SECTIONS.items():
        for name, _, _, rule in declared(cls):
            assert rule.help.strip() and not rule.help.endswith("."), f"{section}.{name}"  # a phrase
            assert rule.finetune in ("base", "differs", "extend", "own")
            assert rule.flag is None or section == "generate"
