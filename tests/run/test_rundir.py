"""The run directory: what makes a folder a run (its marker, or 0.1's stamped files), what is its own and
alone removed, where it may sit, the saved settings a command continues with, and the checks that name what
is missing."""
import json
import re
import shutil

import pytest

from lstm_textgen.atomic import PREFIX
from lstm_textgen.errors import CheckpointError
from lstm_textgen.run.files import MARKER, check_outside_corpus, folder_kind, remove_run_files
from lstm_textgen.run.rundir import check_run_dir, read_metrics

from conftest import REPO, TINY_TEXT


def test_what_kind_of_folder(tmp_path, tiny_run):
    assert folder_kind(tmp_path / "absent") == "absent"
    (tmp_path / "file").write_text("x")
    assert folder_kind(tmp_path / "file") == "file"
    (tmp_path / "empty").mkdir()
    assert folder_kind(tmp_path / "empty") == "empty"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("model: {units: 3}\n")  # a person's own config.yaml, and a tokenizer.json
    (mine / "tokenizer.json").write_text('{"vocab": []}')
    assert folder_kind(mine) == "other"
    assert folder_kind(tiny_run) == "run" and (tiny_run / MARKER).is_file()
    old = tmp_path / "old"
    shutil.copytree(REPO / "tests" / "fixtures" / "run_v0_1_word", old)
    assert not (old / MARKER).exists() and folder_kind(old) == "run"  # 0.1 wrote no marker
    (old / "tokenizer.json").write_text('{"vocab": []}')  # without 0.1's stamp in it, it is not one
    assert folder_kind(old) == "other"


def test_removing_a_run_removes_only_its_own_names(tmp_path, tiny_run):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "tensorboard" / "train").mkdir(parents=True)
    (run / "tensorboard" / "train" / "events.out.tfevents.1.host.1.0.v2").write_bytes(b"")  # one the run recorded
    (run / "checkpoints" / "state_000000007.weights.h5").write_bytes(b"")  # a state a killed save left unnamed
    (run / "checkpoints" / f"{PREFIX}epoch_003.keras.abcd1234.keras").write_bytes(b"")  # a killed write's
    mine = ["notes.txt", ".notes.personal.txt", "checkpoints/my_model.keras.bak", "tokens/extra.npy",
            "tensorboard/my_plot.png", "checkpoints/epoch_best.keras", "checkpoints/epoch_1.keras",
            "checkpoints/state_old.weights.h5", "checkpoints/notes.txt", "tensorboard/train/events.out.tfevents.2.x",
            f"checkpoints/{PREFIX}my_notes.txt.abcd1234.tmp", f"{PREFIX}notes.txt.abcd1234.tmp",
            "mine/config.yaml", "tokens/train.npy.bak"]
    for name in mine:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("mine")
    remove_run_files(run, ["tensorboard/train/events.out.tfevents.1.host.1.0.v2"])
    left = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert left == sorted(mine)


def test_a_run_never_sits_where_its_corpus_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "a.txt").write_text(TINY_TEXT)
    allowed = [("runs/x", "books/*.txt"), ("books/run", "books/*.txt"), ("runs/books", "books"), ("x", "*.txt"),
               ("runs/y", "*.txt")]
    refused = [("books/run", "books/**/*.txt", "where the corpus glob"), ("books/run", "books", "inside the corpus"),
               ("books/r", "books/*/*.txt", "where the corpus glob"), ("runs/z", ".", "inside the corpus folder ."),
               ("books", "books/a.txt", "the corpus books/a.txt is inside the run directory")]
    for run, corpus in allowed:
        check_outside_corpus(tmp_path / run, corpus)
    for run, corpus, message in refused:
        with pytest.raises(CheckpointError, match=message):
            check_outside_corpus(tmp_path / run, corpus)


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
