"""Reading a run back: the checks that name what is missing or damaged (metrics.json's fields, model.keras with
the command that brings it back)."""
import json
import re
import shutil

import pytest

from lstm_textgen.errors import CheckpointError
from lstm_textgen.run.rundir import check_run_dir, read_metrics


@pytest.mark.parametrize("change, problem", [
    ({"best_val_perplexity": "low"}, "best_val_perplexity is 'low'"), ({"epochs": -1}, "epochs is -1"),
    ({"best_epoch": True}, "best_epoch is True"), ({"best_val_loss": [1]}, "best_val_loss is [1]"),
    ({"epochs": None}, "epochs is None")])
def test_metrics_of_the_wrong_type_are_damage_named(tiny_run, tmp_path, change, problem):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert read_metrics(run) == metrics
    (run / "metrics.json").write_text(json.dumps({**metrics, **change}))
    with pytest.raises(CheckpointError, match=re.escape(f"metrics.json is damaged ({problem})")):
        read_metrics(run)


def test_metrics_missing_from_a_run_that_has_trained_is_damage(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for content, problem in (("[]", "it holds a list, not an object"), ("{}", "it lacks epochs"),
                             ('{"epo', "unreadable or damaged")):
        (run / "metrics.json").write_text(content)
        with pytest.raises(CheckpointError, match=re.escape(problem)):
            read_metrics(run)
    (run / "metrics.json").unlink()
    with pytest.raises(CheckpointError, match="metrics.json is missing"):
        read_metrics(run)
    for name in ("model.keras", "history.csv"):
        (run / name).unlink()
    shutil.rmtree(run / "checkpoints")
    assert read_metrics(run) == {}  # before the first epoch ends there is none


def test_a_missing_model_names_the_command_that_brings_it_back(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    best = json.loads((run / "metrics.json").read_text())["best_epoch"]
    (run / "model.keras").unlink()
    with pytest.raises(CheckpointError, match=f"cp {run}/checkpoints/epoch_{best:03d}.keras {run}/model.keras"):
        check_run_dir(run)
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(CheckpointError, match=f"train the run on with: lstm-textgen train --run {run}"):
        check_run_dir(run)
    for name in ("history.csv", "metrics.json"):
        (run / name).unlink()
    with pytest.raises(CheckpointError, match=f"continue its training with: lstm-textgen train --run {run}"):
        check_run_dir(run)
