"""train.batch_size, model.dropout, weight_drop and dense_dropout set to auto: the rules, the cost model they read
steps and passes from, and a run that keeps the values it started with."""
import json
import logging

import numpy as np

import pytest
import yaml

from lstm_textgen.config import load_config
from lstm_textgen.errors import ConfigError
from lstm_textgen.run.rundir import load_saved_config, load_tokenizer
from lstm_textgen.training.auto import (HIGH, KEYS, LOW, MIN_STEPS, RULE, kept, passes, pressure, rows_for, rule, steps,
                                       with_auto)

from conftest import REPO, TINY_SETTINGS, train_tiny, train_tiny_stopped_at

AUTO = [f"model.{key}=auto" for key in KEYS]
QUALITY = REPO / "configs" / "quality.yaml"


def quality(*settings: str):
    return load_config(QUALITY, [*AUTO, *settings], {})


def test_the_rule_rises_with_the_pressure_from_low_to_high():
    for key, (low, high) in RULE.items():
        values = [rule(key, p) for p in (0.01, 1, LOW, 40, 60, 90, HIGH, 1_000, 1e9)]
        assert values == sorted(values) and len(set(values)) == 5
        assert values[:3] == [low] * 3 and values[-3:] == [high] * 3
        assert rule(key, (LOW * HIGH) ** 0.5) == round((low + high) / 2, 2)  # halfway in log2(pressure)


def test_passes_follow_the_budget_and_the_step_cost():
    # War and Peace's 657,078 training tokens at 40 rows: about 4 passes in 5 minutes, 24 in 30 (the runs that
    # calibrated the cost model); a budget six times longer buys six times the passes
    five, thirty = (passes(quality(f"train.max_minutes={m}"), 657_078, 10_000, 40) for m in (5, 30))
    assert 3.5 < five < 4.5 and thirty == pytest.approx(6 * five)
    # fewer rows a step: each token costs more, so fewer passes in the same minutes
    assert passes(quality("train.max_minutes=5"), 657_078, 10_000, 10) < five
    # the epochs cap it, and without a budget they are the passes
    assert passes(quality("train.max_minutes=5", "train.epochs=2"), 657_078, 10_000, 40) == 2
    assert passes(quality("train.max_minutes=null", "train.epochs=7"), 657_078, 10_000, 40) == 7


def test_a_short_budget_gets_fewer_rows_for_enough_steps_and_a_number_stays():
    # War and Peace: 40 rows make about 400 steps an epoch; in 5 minutes that is under MIN_STEPS steps in all
    assert rows_for(quality("train.max_minutes=30"), 657_078, 10_000) == 40
    short = quality("train.max_minutes=5")
    rows = rows_for(short, 657_078, 10_000)
    assert rows == 21 and steps(short, 657_078, 10_000, rows)[1] >= MIN_STEPS > steps(short, 657_078, 10_000, 22)[1]
    assert rows_for(quality("train.max_minutes=0.1"), 657_078, 10_000) == 10  # never below the rule's lowest
    assert rows_for(quality("train.max_minutes=0.1", "train.batch_size=40"), 657_078, 10_000) == 40
    worked = with_auto(short, 657_078, 10_000)
    assert worked.train.batch_size == 21 and worked.model.dropout == 0.1


def test_a_short_budget_or_a_large_corpus_gets_less_regularisation():
    def values(config, tokens, vocab=10_000):
        config = with_auto(config, tokens, vocab)  # the batch by its own auto rule
        return [getattr(config.model, key) for key in KEYS]

    # word level: War and Peace in 30 minutes, and Beyond Good and Evil in 5, get quality.yaml's tuned values;
    # War and Peace in 5 minutes (about 4 passes, pressure about 23) the low ones
    assert values(quality("train.max_minutes=30"), 657_078) == values(quality("train.max_minutes=5"), 115_568) == [
        0.4, 0.5, 0.4]
    assert values(quality("train.max_minutes=5"), 657_078) == [0.1, 0.2, 0.1]
    assert 0.1 < values(quality("train.max_minutes=12"), 657_078)[0] < 0.4
    assert pressure(quality("train.max_minutes=5"), 657_078, 10_000, 40) == pytest.approx(23, rel=0.05)
    # char level: War and Peace's 2.9 M characters in 30 minutes get char.yaml's tuned values
    char = load_config(REPO / "configs" / "char.yaml", AUTO, {})
    assert values(char, 2_932_000, vocab=84) == [0.1, 0.2, 0.1]


def test_only_auto_settings_change_and_keras_step_drops_no_weights():
    config = load_config(QUALITY, ["model.dropout=auto", "model.weight_drop=auto", "model.dense_dropout=0.33"], {})
    worked = with_auto(config, 100_000, 10_000, keras_step="a GPU")
    assert worked.model.dense_dropout == 0.33 and worked.model.weight_drop == 0.0 and 0 < worked.model.dropout < 1
    plain = load_config(QUALITY, ["train.batch_size=20", "model.dropout=0.3", "model.weight_drop=0.3",
                                  "model.dense_dropout=0.3"], {})
    assert with_auto(plain, 100_000, 10_000) is plain


def test_auto_is_a_word_the_config_accepts_and_others_are_refused():
    with pytest.raises(ConfigError, match="model.dropout must be float or 'auto', got 'high'"):
        load_config(QUALITY, ["model.dropout=high"], {})
    with pytest.raises(ConfigError, match=r"model.weight_drop must be in \[0, 1\), got 1"):
        load_config(QUALITY, ["model.weight_drop=1"], {})


def test_a_run_records_the_values_and_a_resumed_one_keeps_them(tiny_corpus, tmp_path, monkeypatch, caplog):
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="lstm_textgen"):  # 40 epochs planned: stopped in the second
        train_tiny_stopped_at(monkeypatch, 4, tiny_corpus, run_dir, *AUTO, "train.epochs=40")
    said = [r.getMessage() for r in caplog.records if "(auto)" in r.getMessage()]
    assert len(said) == 1 and "40.0 passes over" in said[0]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]
    first = {key: saved[key] for key in KEYS}
    assert all(RULE[key][0] < value < RULE[key][1] for key, value in first.items())
    # resumed with auto and 2 epochs, whose passes alone would give the lowest values: it keeps the first ones
    tokens, vocab = len(np.load(run_dir / "tokens" / "train.npy")), load_tokenizer(run_dir).vocab_size
    resumed = load_config(None, [*TINY_SETTINGS, *AUTO, "train.epochs=2"], {})
    assert with_auto(resumed, tokens, vocab).model.dropout == RULE["dropout"][0] < first["dropout"]
    assert kept(resumed, load_saved_config(run_dir)).model.dropout == first["dropout"]
    train_tiny(tiny_corpus, run_dir, *AUTO, "train.epochs=2")
    again = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]
    assert {key: again[key] for key in KEYS} == first
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 2
