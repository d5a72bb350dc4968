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


def test_the_config_reference_page_has_a_row_for_every_key_with_its_declaration():
    from lstm_textgen.config.reference import config_markdown

    rows = {line.split(" | ")[0].strip("| `"): line for line in config_markdown().splitlines()
            if line.startswith("| `")}
    assert sorted(rows) == sorted(all_keys())
    max_minutes = rows["train.max_minutes"]
    assert "| `null` | &gt; 0, at most 10,000,000; null for no time limit |" in max_minutes
    assert "*resume:* may change" in max_minutes
    assert "*fine-tuning:* stays the base run's" in rows["model.units"] and "may not change" in rows["model.units"]
    assert "the new run's own" in rows["train.init_from"]
    assert "*flag:* `-t`, `--temperature`; *HTTP field:* `temperature`" in rows["generate.temperature"]
    assert "| (0, 1] |" in rows["generate.top_p"].replace("\\", "")
    assert "&lt;unk&gt;" in rows["data.base_vocab"] and "<unk>" not in rows["data.base_vocab"]


def test_table_cells_escape_what_markdown_and_html_would_read():
    from lstm_textgen.config.reference import markdown_cell, range_text
    from lstm_textgen.config.setting import Bounds

    assert markdown_cell("a | b <pad> *x* [y] `z` clip_grad_norm_") == \
        "a \\| b &lt;pad&gt; \\*x\\* \\[y\\] \\`z\\` clip\\_grad\\_norm\\_"
    assert range_text(None) == ""
    assert range_text(Bounds(0.0, 1.0, low_open=True)) == "(0, 1]"
    assert range_text(Bounds(1, cap=2**31 - 1)) == "≥ 1, at most 2,147,483,647"
    assert range_text(Bounds(0.0, low_open=True, cap=1.0e7, null="for no time limit")) == \
        "> 0, at most 10,000,000; null for no time limit"
