"""Never lose work: exact resume, --restart/--resume, config checks, signals and kill -9 at any moment."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lstm_textgen.run.rundir import load_run
from lstm_textgen.atomic import PREFIX
from lstm_textgen.cli import cli
from lstm_textgen.training.plan import training_config
from lstm_textgen.run.files import LOCK

from conftest import SHARED_DATA, TINY_SETTINGS, train_tiny, train_tiny_stopped_at
from helpers import read_state, snapshot, wait_for


def history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def column(rows, name):
    return [float(r[name]) for r in rows]


def cli_train(corpus, run_dir, *args):
    flat = [a for s in TINY_SETTINGS for a in ("--set", s)]
    return CliRunner().invoke(cli, ["train", str(corpus), "--run", str(run_dir), *flat, *args])


@pytest.mark.parametrize("optimizer", [[], ["train.optimizer=sgd", "train.learning_rate=0.5", "train.clipnorm=null",
                                            "train.global_clipnorm=1.0"]], ids=["adam", "sgd"])
def test_resumed_run_equals_an_uninterrupted_one(tiny_corpus, tmp_path, optimizer):
    # Dropout everywhere, so the restored seed state matters as much as the weights and Adam's moments.
    extra = ["train.epochs=3", "model.dropout=0.3", "model.recurrent_dropout=0.2", "model.dense_dropout=0.3",
             "model.weight_drop=0.2", "model.embedding_dropout=0.2", *optimizer]
    whole = history(train_tiny(tiny_corpus, tmp_path / "whole", *extra))
    train_tiny(tiny_corpus, tmp_path / "parts", *extra[1:], "train.epochs=1")
    parts = history(train_tiny(tiny_corpus, tmp_path / "parts", *extra))  # epochs is a safe change
    assert [r["epoch"] for r in parts] == ["1", "2", "3"]
    for name in ("loss", "val_loss", "accuracy"):
        assert column(parts, name) == pytest.approx(column(whole, name), rel=1e-6)


@pytest.mark.parametrize("schedule, epochs", [
    ([], 2), (["train.lr_decay=cosine", "train.learning_rate=0.01"], 2),
    # min_delta this large: no epoch after the first counts as better, so the curve is halved after epoch 2.
    (["train.lr_decay=cosine", "train.learning_rate=0.01", "train.reduce_lr_patience=1",
      "train.reduce_lr_min_delta=100"], 3)], ids=["constant", "decay", "decay-and-plateau"])
def test_resume_mid_epoch_continues_at_the_same_step(tiny_corpus, tmp_path, schedule, epochs):
    """SIGINT mid-epoch saves the state at that step; the rerun finishes the epoch and matches (at the same
    rates, with the learning rate decaying by the step, and with the plateau rule lowering that curve)."""
    settings = [f"train.epochs={epochs}", "train.steps_per_epoch=40", "train.backup_every_steps=3", *schedule]
    whole = history(train_tiny(tiny_corpus, tmp_path / "whole", *settings))
    run = tmp_path / "parts"
    args = [sys.executable, "-m", "lstm_textgen", "train", str(tiny_corpus), "--run", str(run),
            *[a for s in TINY_SETTINGS + settings for a in ("--set", s)]]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = epochs - 1  # stopped inside the last epoch
    wait_for(lambda: read_state(run).get("epoch") == last and read_state(run)["step"] >= 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"Stopped at epoch {epochs}, step" in err
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == last and 0 < state["step"] < 40

    result = cli_train(tiny_corpus, run, *[a for s in settings for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    assert f"Resuming {run} from epoch {epochs}, step {state['step']}" in result.stderr
    parts = history(run)
    assert [r["epoch"] for r in parts] == [str(e) for e in range(1, epochs + 1)]
    assert column(parts, "val_loss") == pytest.approx(column(whole, "val_loss"), rel=1e-6)
    assert column(parts, "loss") == pytest.approx(column(whole, "loss"), rel=1e-5)
    assert column(parts, "learning_rate") == pytest.approx(column(whole, "learning_rate"), rel=1e-6)


def test_finished_run_has_nothing_to_do_and_restart_starts_over(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    corpus = load_run(run).config.data.corpus
    again = cli_train(corpus, run, "--set", "train.epochs=2")
    assert again.exit_code == 0 and "nothing to do" in again.stderr
    assert len(history(run)) == 2
    restarted = cli_train(corpus, run, "--restart")
    assert restarted.exit_code == 0
    assert "Starting over" in restarted.stderr and len(history(run)) == 1


def test_resume_flag_refuses_to_start_a_new_run(tiny_corpus, tmp_path):
    result = cli_train(tiny_corpus, tmp_path / "new", "--resume")
    assert result.exit_code == 1 and "has no run to resume" in result.output


def test_resume_refuses_shape_changes_and_reports_safe_ones(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    corpus = load_run(run).config.data.corpus
    refused = cli_train(corpus, run, "--set", "model.units=16", "--set", "data.window_size=6",
                        "--set", "train.epochs=3")
    assert refused.exit_code == 1
    error = [line for line in refused.output.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1
    assert "model.units (8 -> 16)" in error[0] and "data.window_size (5 -> 6)" in error[0]
    assert "train.epochs" not in error[0]
    allowed = cli_train(corpus, run, "--set", "train.epochs=3", "--set", "train.learning_rate=0.01")
    assert allowed.exit_code == 0, allowed.output
    assert "changed: train.epochs (2 -> 3), train.learning_rate (0.001 -> 0.01)" in allowed.stderr
    assert [r["epoch"] for r in history(run)] == ["1", "2", "3"]


def test_changed_corpus_is_not_resumed(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    train_tiny(tiny_corpus, run)
    tiny_corpus.write_text(tiny_corpus.read_text() + "a new line .\n")
    result = cli_train(tiny_corpus, run, "--set", "train.epochs=2")
    assert result.exit_code == 1 and "is not the text the run started on" in result.output


def test_second_run_reuses_the_token_cache(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    train_tiny(tiny_corpus, run)
    result = cli_train(tiny_corpus, run, "--set", "train.epochs=2")
    assert result.exit_code == 0 and "using the tokenized corpus cached" in result.stderr


def temp_file_in(folder, name=""):
    return lambda: folder.is_dir() and any(p.name.startswith(PREFIX + name) for p in folder.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["tokenizing", "mid-epoch", "writing a checkpoint", "writing the state"])
def test_kill_9_at_any_moment_leaves_a_resumable_run(tmp_path, moment):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text((SHARED_DATA / "tinyshakespeare.txt").read_text()[:300000])
    run = tmp_path / "run"
    settings = [*TINY_SETTINGS, "train.epochs=3", "train.steps_per_epoch=30", "train.backup_every_steps=7"]
    args = [sys.executable, "-m", "lstm_textgen", "train", str(corpus), "--run", str(run),
            *[a for s in settings for a in ("--set", s)]]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if moment == "tokenizing":  # the first line is logged just before the corpus is read and tokenized
        assert proc.stderr.readline().startswith("Starting a new run")
    elif moment == "mid-epoch":
        wait_for(lambda: (run / "checkpoints" / "state.json").exists(), proc)
    elif moment == "writing a checkpoint":
        wait_for(temp_file_in(run / "checkpoints"), proc)
    else:
        wait_for(temp_file_in(run / "checkpoints", "state"), proc)
    proc.kill()
    proc.wait()

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert [r["epoch"] for r in history(run)] == ["1", "2", "3"]
    assert not [p for p in run.rglob(PREFIX + "*")], "a temporary file was left behind"
    loaded = load_run(run)
    assert loaded.model.output_shape[-1] == loaded.tokenizer.vocab_size


@pytest.mark.parametrize("damage, back_to", [
    (lambda run, state: (run / "checkpoints" / state["weights"]).write_bytes(b"not hdf5"), 2),
    (lambda run, state: (run / "checkpoints" / state["weights"]).unlink(), 2),
    (lambda run, state: [(run / "checkpoints" / state["weights"]).write_bytes(b""),
                         (run / "checkpoints" / "epoch_002.keras").write_bytes(b"PK\x03\x04 truncated")], 1),
])
def test_a_damaged_state_falls_back_to_the_last_good_epoch_checkpoint(tiny_corpus, tmp_path, damage, back_to):
    run = tmp_path / "run"
    train_tiny(tiny_corpus, run, "train.epochs=2")
    before = history(run)
    damage(run, read_state(run))
    result = cli_train(tiny_corpus, run, "--set", "train.epochs=3")
    assert result.exit_code == 0, result.output
    assert f"resuming from {run / 'checkpoints' / f'epoch_{back_to:03d}.keras'}" in result.stderr
    after = history(run)
    assert [r["epoch"] for r in after] == ["1", "2", "3"]  # every epoch exactly once
    assert after[:back_to] == before[:back_to]  # the epochs before the checkpoint are kept as they were
    assert read_state(run)["epoch"] == 3
    loaded = load_run(run)
    assert loaded.model.output_shape[-1] == loaded.tokenizer.vocab_size


def test_a_trained_run_with_no_readable_weights_left_is_not_started_over(tiny_run, tmp_path, tiny_corpus):
    """Its state's weights and every epoch checkpoint damaged: training from the start would overwrite model.keras."""

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "checkpoints" / read_state(run)["weights"]).write_bytes(b"not hdf5")
    for checkpoint in (run / "checkpoints").glob("epoch_*.keras"):
        checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    before = snapshot(tmp_path)
    result = cli_train(tiny_corpus, run, "--set", "train.epochs=3")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"Error: cannot continue {run}: {run / 'checkpoints' / read_state(run)['weights']} is missing or damaged, " \
           "and no epoch checkpoint can be read, so its 2 trained epochs would start over" in result.output
    assert snapshot(tmp_path) == before


def test_restart_removes_only_the_runs_own_files(tiny_run, tmp_path, tiny_corpus):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    mine = {run / "my notes.txt": "keep", run / ".notes.personal.txt": "keep too",
            run / "checkpoints" / "README": "mine", run / "tokens" / "extra.npy": "mine"}
    for path, text in mine.items():
        path.write_text(text)
    result = cli_train(tiny_corpus, run, "--restart")
    assert result.exit_code == 0, result.output
    assert all(path.read_text() == text for path, text in mine.items())
    assert [r["epoch"] for r in history(run)] == ["1"]  # a new run, in the same folder


def test_a_finished_run_without_its_checkpoints_has_nothing_to_do(tiny_run, tmp_path, tiny_corpus):
    """The checkpoints/ folder is most of a run's size, so people delete it: the run is still finished."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "checkpoints")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = cli_train(tiny_corpus, run, "--set", "train.epochs=2")
    assert result.exit_code == 0 and "already trained 2 epochs; nothing to do" in result.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != LOCK} == {
        k: v for k, v in before.items() if k != LOCK}


def test_a_half_trained_run_continues_with_the_command_generate_suggests(tiny_corpus, tmp_path, monkeypatch):
    """generate names `lstm-textgen train --run DIR`; that command takes the run's own corpus and settings."""
    settings = ["train.epochs=2", "train.steps_per_epoch=6", "train.backup_every_steps=2"]
    whole = history(train_tiny(tiny_corpus, tmp_path / "whole", *settings))
    run = tmp_path / "run"
    train_tiny_stopped_at(monkeypatch, 4, tiny_corpus, run, *settings)  # in epoch 1: no model.keras yet
    hint = CliRunner().invoke(cli, ["generate", "--run", str(run), "--seed", "the cat"])
    assert hint.exit_code == 1
    command = hint.output.split("continue its training with: ")[1].strip()
    assert command == f"lstm-textgen train --run {run}"
    result = CliRunner().invoke(cli, command.split()[1:], catch_exceptions=False)  # no corpus, no --set
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.stderr
    assert [float(r["val_loss"]) for r in history(run)] == pytest.approx([float(r["val_loss"]) for r in whole],
                                                                        rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["train.stateful=true"], ["train.stateful=true", "model.tie_weights=true"]])
def test_stateful_run_stopped_mid_epoch_resumes_exactly(tiny_corpus, tmp_path, monkeypatch, extra):
    settings = [*extra, "train.batch_size=3", "train.epochs=2", "train.steps_per_epoch=6", "model.dropout=0.2"]
    whole = history(train_tiny(tiny_corpus, tmp_path / "whole", *settings))
    # Step 9: the middle of epoch 2, with the state carried 3 batches.
    train_tiny_stopped_at(monkeypatch, 9, tiny_corpus, tmp_path / "parts", *settings)
    parts = history(train_tiny(tiny_corpus, tmp_path / "parts", *settings))
    for name in ("loss", "val_loss"):
        assert [float(r[name]) for r in parts] == pytest.approx([float(r[name]) for r in whole], rel=1e-6)


def test_a_damaged_state_of_a_tied_stateful_run_falls_back_to_its_plain_epoch_checkpoint(tiny_corpus, tmp_path):
    import json

    settings = ["train.stateful=true", "model.tie_weights=true", "train.batch_size=3"]
    run = train_tiny(tiny_corpus, tmp_path / "run", *settings, "train.epochs=2")
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    (run / "checkpoints" / state["weights"]).write_bytes(b"not hdf5")
    before = history(run)
    train_tiny(tiny_corpus, run, *settings, "train.epochs=3")
    after = history(run)
    assert [r["epoch"] for r in after] == ["1", "2", "3"] and after[:2] == before
    assert json.loads((run / "checkpoints" / "state.json").read_text())["epoch"] == 3


def test_a_train_command_on_a_run_continues_with_its_saved_settings(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = training_config(None, ["train.epochs=5"], {"train.run_dir": str(run)})
    assert (config.model.units, config.train.epochs) == (8, 5)  # its own units, the new epochs
    assert config.data.corpus == json.loads((run / "metrics.json").read_text())["corpus"]
    restart = training_config(None, [], {"train.run_dir": str(run)}, restart=True)
    assert restart.model.units == 128  # a restart starts from the defaults
    assert training_config(None, [], {"train.run_dir": str(tmp_path / "new")}).model.units == 128


@pytest.mark.slow
def test_a_stateful_run_with_auto_batch_size_trains_as_its_number_and_resumes_with_it(tiny_corpus, tmp_path,
                                                                                       monkeypatch):
    # The tiny corpus's 864 training tokens make 172 windows of 5: auto gives the fewest rows, 10.
    settings = ["train.stateful=true", "train.epochs=2", "train.steps_per_epoch=6", "model.dropout=0.2"]
    number = history(train_tiny(tiny_corpus, tmp_path / "number", *settings, "train.batch_size=10"))
    result = cli_train(tiny_corpus, tmp_path / "auto", *(a for s in settings for a in ("--set", s)),
                       "--set", "train.batch_size=auto")
    assert result.exit_code == 0, result.output
    assert "train.batch_size=auto: 10 rows a step, for 864 training tokens" in result.stderr
    auto = history(tmp_path / "auto")
    for name in ("loss", "val_loss"):
        assert column(auto, name) == pytest.approx(column(number, name), rel=1e-6)
    assert load_run(tmp_path / "auto").config.train.batch_size == 10  # the run keeps the number it started with
    assert json.loads((tmp_path / "auto" / "metrics.json").read_text())["batch_size"] == 10
    # Stopped in epoch 2 and continued: the same 10 rows from the same cached tokens.
    train_tiny_stopped_at(monkeypatch, 9, tiny_corpus, tmp_path / "parts", *settings, "train.batch_size=auto")
    parts = history(train_tiny(tiny_corpus, tmp_path / "parts", *settings, "train.batch_size=auto"))
    for name in ("loss", "val_loss"):
        assert column(parts, name) == pytest.approx(column(number, name), rel=1e-6)
