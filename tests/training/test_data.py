"""Windows cut on the fly (right inputs, sparse targets, every window once a pass, resumable at any step) and
the stateful streams, read straight from the token ids; train.batch_size, model.dropout, weight_drop and
dense_dropout set to auto: the rules, the cost model they read steps and passes from, and a run that keeps the
values it started with."""
import json
import logging

import numpy as np
import pytest
import yaml

from lstm_textgen.config import DataConfig, load_config
from lstm_textgen.training.data import (AUTO_ROWS, AUTO_STEPS, HIGH, KEYS, LOW, MIN_STEPS, RULE, batch_size_for,
                                        check_long_enough, count_windows, kept, make_dataset, make_stream_dataset,
                                        passes, pressure, rows_for, rule, steps, stride_for, stream_windows, with_auto)
from lstm_textgen.training.train import _with_batch_size
from lstm_textgen.errors import ConfigError, CorpusError
from lstm_textgen.run.rundir import load_saved_config, load_tokenizer

from conftest import REPO, TINY_SETTINGS, train_tiny, train_tiny_stopped_at


def batches(ds, n):
    return [tuple(np.asarray(t) for t in b) for b in ds.take(n)]


@pytest.mark.parametrize("n, w, stride, expected", [(10, 3, 1, 7), (10, 3, 3, 3), (4, 3, 1, 1), (3, 3, 1, 0)])
def test_count_windows(n, w, stride, expected):
    assert count_windows(n, w, stride) == expected


def test_last_objective_windows_and_targets():
    ids = np.arange(100, 130, dtype=np.int32)
    (x, y), = batches(make_dataset(ids, 4, 64, "last", 1), 1)
    assert x.shape == (26, 4) and y.shape == (26,)
    assert x[0].tolist() == [100, 101, 102, 103] and y[0] == 104
    assert x[-1].tolist() == [125, 126, 127, 128] and y[-1] == 129


def test_sequence_objective_targets_are_shifted_inputs():
    ids = np.arange(50, dtype=np.int32)
    (x, y), = batches(make_dataset(ids, 5, 100, "sequence", 5), 1)
    assert x.shape == y.shape == (9, 5)
    np.testing.assert_array_equal(y, x + 1)
    assert x[:, 0].tolist() == list(range(0, 45, 5))  # windows tile the text


def test_shuffled_passes_cover_every_window_once_and_repeat_with_the_seed():
    ids = np.arange(40, dtype=np.int32)
    n = count_windows(40, 3, 1)
    first = batches(make_dataset(ids, 3, n, "last", 1, shuffle=True, seed=7), 2)
    again = batches(make_dataset(ids, 3, n, "last", 1, shuffle=True, seed=7), 2)
    other = batches(make_dataset(ids, 3, n, "last", 1, shuffle=True, seed=8), 1)
    for (x, y), _ in zip(first, range(2)):
        assert sorted(x[:, 0].tolist()) == list(range(n))  # one pass = every window exactly once
        np.testing.assert_array_equal(y, x[:, 0] + 3)
    assert first[0][0].tolist() != first[1][0].tolist()  # a new order each pass
    assert all((a[0] == b[0]).all() for a, b in zip(first, again))
    assert not (other[0][0] == first[0][0]).all()
    stream = np.concatenate([x for x, _ in batches(make_dataset(ids, 3, 4, "last", 1, shuffle=True, seed=7), 20)])
    for start in (8, 36, 44):  # mid-pass, the end of a pass, inside the second pass
        resumed = batches(make_dataset(ids, 3, 4, "last", 1, shuffle=True, seed=7, start=start), 3)
        np.testing.assert_array_equal(np.concatenate([x for x, _ in resumed]), stream[start:start + 12])


def test_stride_defaults():
    config = DataConfig(window_size=7)
    assert stride_for(config, "last") == 1 and stride_for(config, "sequence") == 7
    assert stride_for(DataConfig(stride=2), "sequence") == 2


def test_too_short_for_one_window():
    config = DataConfig(window_size=10)
    with pytest.raises(CorpusError, match="too short for one training window of 11"):
        check_long_enough(np.ones(5, np.int32), np.ones(20, np.int32), config)
    with pytest.raises(CorpusError, match="validation tail has 3 tokens"):
        check_long_enough(np.ones(50, np.int32), np.ones(3, np.int32), config)


def test_windows_cut_from_a_memmap_equal_those_from_an_array(tmp_path):
    ids = np.random.default_rng(0).integers(0, 500, 1000).astype(np.int32)
    np.save(tmp_path / "ids.npy", ids)
    mapped = np.load(tmp_path / "ids.npy", mmap_mode="r")
    for objective, stride, shuffle in (("sequence", 7, True), ("last", 1, True), ("last", 3, False)):
        a = batches(make_dataset(ids, 7, 16, objective, stride, shuffle=shuffle, seed=3, start=5), 30)
        b = batches(make_dataset(mapped, 7, 16, objective, stride, shuffle=shuffle, seed=3, start=5), 30)
        assert len(a) == len(b) > 0
        for (xa, ya), (xb, yb) in zip(a, b):
            assert xb.dtype == np.int32
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_stream_batches_continue_each_row_from_the_batch_before():
    ids = np.arange(100, dtype=np.int32)  # 3 streams of 33 tokens: 0-32, 33-65, 66-98 (99 is dropped)
    batches = [tuple(np.asarray(t) for t in b) for b in make_stream_dataset(ids, 4, 3)]
    assert len(batches) == stream_windows(100, 4, 3) == 8  # (33 - 1) // 4 windows per stream
    inputs, targets = batches[0]
    np.testing.assert_array_equal(inputs, [[0, 1, 2, 3], [33, 34, 35, 36], [66, 67, 68, 69]])
    np.testing.assert_array_equal(targets, inputs + 1)
    np.testing.assert_array_equal(batches[1][0], inputs + 4)  # row r goes on where it stopped
    np.testing.assert_array_equal(batches[-1][1][:, -1], [32, 65, 98])  # every stream is used to its end


def test_stream_batches_from_a_global_step_cycle_the_same_windows():
    ids = np.arange(100, dtype=np.int32)
    one_pass = [np.asarray(b[0]) for b in make_stream_dataset(ids, 4, 3)]
    resumed = [np.asarray(b[0]) for b in make_stream_dataset(ids, 4, 3, start=6).take(4)]
    for got, k in zip(resumed, (6, 7, 0, 1)):
        np.testing.assert_array_equal(got, one_pass[k])


@pytest.mark.parametrize("tokens, rows", [
    (1_000, AUTO_ROWS[0]),  # a few windows: the fewest rows
    (115_568, AUTO_ROWS[0]),  # nietzsche.txt's training tokens: 3,301 windows of 35
    (35 * AUTO_STEPS * 17 + 35, 17),  # in between: an epoch of 400 steps
    (35 * AUTO_STEPS * 17 + 35 + 35 * 190, 17),  # 6,990 windows: 17.475 a step, rounded to 17
    (657_078, AUTO_ROWS[1]),  # War and Peace's: 18,773 windows, 47 a step at 400 steps, capped
])
def test_auto_batch_size_makes_an_epoch_about_400_steps_within_its_bounds(tokens, rows):
    config = load_config(None, ["train.batch_size=auto", "data.window_size=35", "train.stateful=true"])
    assert batch_size_for(config.train, config.data, config.model.objective, tokens) == rows
    assert _with_batch_size(config, tokens).train.batch_size == rows
    assert _with_batch_size(config, tokens).train.stateful  # the rest of the config as it was


def test_auto_batch_size_counts_the_windows_of_the_objective_and_a_number_stays():
    last = load_config(None, ["train.batch_size=auto", "data.window_size=35", "model.objective=last"])
    assert batch_size_for(last.train, last.data, "last", AUTO_STEPS * 20 + 35) == 20  # a window at every token
    fixed = load_config(None, ["train.batch_size=7"])
    assert batch_size_for(fixed.train, fixed.data, "sequence", 10**6) == 7
    assert _with_batch_size(fixed, 10**6) is fixed


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


def test_a_run_saved_with_batch_size_auto_resumes_by_the_rule_it_started_with(tmp_path, monkeypatch):
    # 24,000 tokens make 4,799 windows of 5: the 400-steps rule gives 12 rows; a run of 6 steps takes 10 (budget)
    corpus = tmp_path / "big.txt"
    corpus.write_text(("the cat sat on the mat . the dog sat on the log .\n" * 1_715), encoding="utf-8")
    run_dir, settings = tmp_path / "run", ["train.batch_size=auto", "train.epochs=2"]
    train_tiny_stopped_at(monkeypatch, 4, corpus, run_dir, *settings)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["train"]["batch_size"] == 10
    # as the code before the budget rule wrote it: config.yaml keeps `auto`; resumed, the 400-steps rule's number
    saved["train"]["batch_size"] = "auto"
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    old = load_config(None, [*TINY_SETTINGS, *settings])
    rows = batch_size_for(old.train, old.data, old.model.objective, len(np.load(run_dir / "tokens" / "train.npy")))
    assert rows == 12
    train_tiny(corpus, run_dir, *settings)
    assert json.loads((run_dir / "metrics.json").read_text())["batch_size"] == rows
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["batch_size"] == "auto"
