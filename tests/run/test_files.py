"""A run directory's own files: the marker that makes a folder a run, the names it makes (alone removed, epoch and
state names that round-trip), and the folders a run may not sit in."""
import shutil

import pytest

from lstm_textgen.atomic import PREFIX
from lstm_textgen.errors import CheckpointError
from lstm_textgen.run.files import (MARKER, check_no_runs_read, check_outside_corpus, epoch_checkpoint_name, folder_kind,
                                    is_epoch_checkpoint, is_ours, is_state_weights, remove_run_files,
                                    state_weights_name)

from conftest import REPO, TINY_TEXT


def test_the_names_a_run_makes_are_the_names_it_recognises():
    for epoch in (1, 42, 999, 1000, 123456):
        assert is_epoch_checkpoint(epoch_checkpoint_name(epoch))
    for step in (0, 7, 10**9, 10**12):
        assert is_state_weights(state_weights_name(step))
    for name in ("epoch_1.keras", "epoch_0001.keras", "epoch_best.keras", "epoch_002.keras.bak"):
        assert not is_epoch_checkpoint(name), name  # 0001: not how epoch 1 is written
    for name in ("state_7.weights.h5", "state_old.weights.h5", "state_000000007.weights.h5.tmp"):
        assert not is_state_weights(name), name


@pytest.mark.parametrize("folder, name, ours", [
    ("", "model.keras", True), ("", "notes.txt", False), ("checkpoints", "epoch_003.keras", True),
    ("checkpoints", "state.json", True), ("checkpoints", "my_model.keras", False), ("tokens", "train.npy", True),
    ("tokens", "extra.npy", False), ("", "checkpoints", False),
])
def test_is_ours_knows_each_folders_names(folder, name, ours):
    assert is_ours(folder, name) is ours


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


def test_a_folder_or_glob_of_text_never_reads_a_run(tmp_path, tiny_run):
    books = tmp_path / "books"
    (books / "shelf").mkdir(parents=True)
    (books / "a.txt").write_text(TINY_TEXT)
    check_no_runs_read(str(books))
    shutil.copytree(tiny_run, books / "shelf" / "run")
    for spec in (books, f"{books}/**/*.txt", books / "shelf"):
        with pytest.raises(CheckpointError, match="reads the run directory .*run .samples.txt is one of its files"):
            check_no_runs_read(str(spec), "corpus")
    check_no_runs_read(str(books / "shelf" / "run" / "samples.txt"))  # a file named on its own is read as given
