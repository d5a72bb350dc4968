"""Planning a run before anything is written: a new run, a resumed one, a restart, nothing to do, or a refusal
naming why; what may change when a run resumes (read off the settings' declarations); what cannot start; and the
settings a fine-tuned run must keep from its base. Planning reads: it writes only the lock."""
import json
import logging
import shutil

import pytest

from lstm_textgen.config import load_config
from lstm_textgen.errors import CheckpointError, ConfigError
from lstm_textgen.run.files import LOCK
from lstm_textgen.run.lock import RunLock
from lstm_textgen.training.plan import (Plan, check_start, config_changes, conflicts, plan, plan_run, start_from,
                                        training_config)

from conftest import TINY_SETTINGS
from helpers import snapshot


def saved(run, *extra):
    """The config a train command on run means with extra --set values (its saved settings underneath)."""
    return training_config(None, [f"train.run_dir={run}", *extra], {})


@pytest.mark.parametrize("kind", ["absent", "empty"])
def test_a_missing_or_empty_folder_gets_a_new_run_and_resume_refuses_it(tmp_path, kind):
    run = tmp_path / "run"
    if kind == "empty":
        run.mkdir()
    config = load_config(None, [f"train.run_dir={run}"])
    assert plan_run(config, run, "auto") == Plan(None, new=True)
    assert plan_run(config, run, "restart") == Plan(None, new=True)
    with pytest.raises(CheckpointError, match="has no run to resume; drop --resume to start a new run"):
        plan_run(config, run, "resume")


def test_a_file_or_someone_elses_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="is a file; choose another --run"):
        plan_run(load_config(), tmp_path / "file", "auto")
    with pytest.raises(CheckpointError, match=r"is not an lstm-textgen run directory and is not empty \(it holds "
                                              r"notes.txt, ...\)"):
        plan_run(load_config(), tmp_path / "mine", "restart")


def test_a_finished_run_has_nothing_to_do_until_it_may_train_longer(tiny_run, caplog):
    before = snapshot(tiny_run)
    done = plan_run(saved(tiny_run), tiny_run, "auto")
    assert done.state.progress.epoch == 2 and done.done.startswith(f"{tiny_run} has already trained 2 epochs; "
                                                                   "nothing to do (raise --set train.epochs")
    with caplog.at_level(logging.INFO, logger="lstm_textgen"):
        longer = plan_run(saved(tiny_run, "train.epochs=3", "generate.temperature=0.5"), tiny_run, "resume")
    assert longer.state.progress.epoch == 2 and not longer.done and not longer.new
    assert "Resuming" in caplog.text and "changed: train.epochs (2 -> 3), generate.temperature (0.8 -> 0.5)" in caplog.text
    assert plan_run(saved(tiny_run), tiny_run, "restart") == Plan(None, restart=True)
    assert snapshot(tiny_run) == before  # planning wrote nothing


def test_a_run_is_not_resumed_with_settings_that_change_what_it_is(tiny_run):
    with pytest.raises(CheckpointError, match=r"cannot resume .*: the config differs in data.window_size \(5 -> 6\), "
                                              r"model.units \(8 -> 16\); keep the old values"):
        plan_run(saved(tiny_run, "model.units=16", "data.window_size=6", "train.epochs=3"), tiny_run, "auto")


def test_what_may_change_on_resume_is_each_settings_declared_policy():
    old = load_config(None, TINY_SETTINGS)
    new = load_config(None, [*TINY_SETTINGS, "model.units=9", "train.epochs=5", "train.run_dir=moved",
                             "data.corpus=other.txt", "generate.min_p=0.1"])
    refused, allowed = config_changes(old, new)
    assert refused == ["model.units (8 -> 9)"]
    assert allowed == ["data.corpus ('data/tinyshakespeare.txt' -> 'other.txt')", "train.epochs (1 -> 5)",
                       "generate.min_p (0.0 -> 0.1)"]  # train.run_dir: a run may be moved or copied


@pytest.mark.parametrize("settings, message", [
    (["train.freeze=[embedding]"], "train.freeze is about a base run's weights and vocabulary: it needs "
                                   "train.init_from"),
    (["data.base_vocab=extend"], "data.base_vocab=extend is about a base run's"),
    (["train.init_from=b", "train.freeze=[lstm_2]"], "train.freeze names 'lstm_2', which the model does not have; "
                                                     "its layers with weights are embedding, lstm_1, dense, next_word"),
    (["train.init_from=b", "train.freeze=[embedding, lstm_1, dense, next_word]"], "train.freeze lists every layer"),
    (["train.init_from=runs/b", "train.run_dir=runs/b/tuned"], "the run directory runs/b/tuned is the base run runs/b "
                                                               "(or inside it)"),
])
def test_what_cannot_start_is_refused_before_anything_is_read(settings, message):
    with pytest.raises((ConfigError, CheckpointError)) as info:
        check_start(load_config(None, settings))
    assert message in str(info.value)


def test_the_lock_is_taken_only_on_a_folder_that_holds_a_run(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / LOCK).unlink(missing_ok=True)
    lock = RunLock(run, LOCK)
    try:
        assert plan(saved(run), "auto", lock).done
        assert json.loads((run / LOCK).read_text())["pid"] > 0 and lock.fd is not None
    finally:
        lock.release()
    fresh = RunLock(tmp_path / "new", LOCK)
    assert plan(load_config(None, [f"train.run_dir={tmp_path / 'new'}"]), "auto", fresh).new
    assert not (tmp_path / "new").exists()  # nothing written: train() makes the folder once all has checked out


def test_a_fine_tuned_run_keeps_the_bases_shape_level_and_vocabulary_settings(tiny_run, tmp_path):
    base = load_config(None, TINY_SETTINGS)
    tuned = load_config(None, [*TINY_SETTINGS, "model.dropout=0.3", "data.corpus=new.txt", "data.max_vocab=50",
                               "model.units=9", "data.level=char"])
    assert conflicts(base, tuned) == ["data.level ('word' -> 'char')", "data.max_vocab (10000 -> 50)",
                                      "model.units (8 -> 9)"]
    extended = load_config(None, [*TINY_SETTINGS, "data.max_vocab=50", "data.base_vocab=extend"])
    assert conflicts(base, extended) == []  # extend picks how many words to add
    tune = [*TINY_SETTINGS, f"train.init_from={tiny_run}", f"train.run_dir={tmp_path / 'tuned'}"]
    base_run = start_from(load_config(None, tune))
    assert base_run.config == load_config(tiny_run / "config.yaml") and set(base_run.weights) == {
        "embedding", "lstm_1", "dense", "next_word"}
    with pytest.raises(ConfigError, match=r"cannot fine-tune from .*: the settings differ from the base run's in "
                                          r"model.units \(8 -> 9\)"):
        start_from(load_config(None, [*tune, "model.units=9"]))
    with pytest.raises(ConfigError, match="data.max_vocab=5 is below the base run's vocabulary of"):
        start_from(load_config(None, [*tune, "data.max_vocab=5", "data.base_vocab=extend"]))

