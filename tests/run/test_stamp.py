"""A run's saved config.yaml: the resolved settings, a fine-tuned run's origin, and the stamp last (a file cut
short lacks it); a file without the stamp, or of another schema, is refused; runs of 0.1 (stamp first) still
read."""
import shutil

import pytest
import yaml

from lstm_textgen.config import Config, load_config
from lstm_textgen.errors import ConfigError
from lstm_textgen.run.stamp import SCHEMA_VERSION, check_saved_meta, config_yaml, save_config

from conftest import REPO


def test_the_stamp_comes_last_so_a_file_cut_short_lacks_it(tmp_path):
    path = tmp_path / "config.yaml"
    save_config(path, Config(), {"init_from": "runs/base"})
    text = path.read_text()
    raw = yaml.safe_load(text)
    assert list(raw)[-2:] == ["origin", "lstm_textgen"] and raw["lstm_textgen"]["schema"] == SCHEMA_VERSION
    check_saved_meta(raw, path)
    assert load_config(path) == Config()
    for cut in (text.rindex("\ngenerate:"), len(text) - len("  schema: 1\n")):  # at a line end: still YAML
        with pytest.raises(ConfigError, match="lacks the lstm_textgen: stamp that lstm-textgen writes at the end"):
            check_saved_meta(yaml.safe_load(text[:cut]) or {}, path)


@pytest.mark.parametrize("raw, message", [
    ({}, "config.yaml is empty: it lacks the lstm_textgen: stamp"),
    ({"data": {}}, "config.yaml is damaged: it lacks the lstm_textgen: stamp"),
    ({"lstm_textgen": "0.1"}, "is damaged: it lacks"),
    ({"lstm_textgen": {"version": "9.0", "schema": 9}}, "has config schema 9 (written by lstm-textgen '9.0')"),
])
def test_a_config_without_the_stamp_or_of_another_schema_is_refused(tmp_path, raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_saved_meta(raw, tmp_path / "config.yaml")


def test_a_run_of_0_1_with_its_stamp_first_still_reads(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(REPO / "tests" / "fixtures" / "run_v0_1_word", old)
    raw = yaml.safe_load((old / "config.yaml").read_text())
    assert list(raw)[0] == "lstm_textgen"
    check_saved_meta(raw, old / "config.yaml")


def test_the_yaml_is_the_resolved_config_with_every_section():
    config = load_config(None, ["model.units=33", "generate.min_p=0.1"])
    raw = yaml.safe_load(config_yaml(config, "x"))
    assert raw["model"]["units"] == 33 and raw["generate"]["min_p"] == 0.1
    assert set(raw) == {"data", "embedding", "model", "train", "generate", "lstm_textgen"}


def test_saved_config_round_trips(tmp_path):
    config = load_config(None, ["model.units=33", "data.level=char"])
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(config, "0.1.0"))
    assert yaml.safe_load(path.read_text())["lstm_textgen"]["schema"] == 1
    assert load_config(path) == config


def test_a_fine_tuned_runs_origin_is_saved_after_its_settings_before_the_stamp_and_is_no_setting(tmp_path):
    config = load_config(None, ["train.init_from=runs/base", "train.freeze=[embedding, lstm_1]",
                                "data.base_vocab=extend"])
    assert config.train.freeze == ["embedding", "lstm_1"]
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(config, "0.1.0", {"init_from": "runs/base", "config_sha256": "ab"}))
    saved = yaml.safe_load(path.read_text())
    assert list(saved)[-2:] == ["origin", "lstm_textgen"] and saved["origin"]["config_sha256"] == "ab"
    assert load_config(path) == config
