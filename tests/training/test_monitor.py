"""Watching training: samples.txt after each epoch, curves.png redrawn per epoch, TensorBoard event files."""
import csv
import re
import shutil

import numpy as np
import pytest

from lstm_textgen.run import curves as curves_module
from lstm_textgen.config import load_config
from lstm_textgen.errors import ConfigError
from lstm_textgen.training.monitor import CurvesWriter, SampleWriter, format_samples, monitoring_callbacks
from lstm_textgen.run.files import remove_run_files
from lstm_textgen.run.state import TrainingState, recorded_logs

from conftest import PNG_SIGNATURE, TINY_SETTINGS, train_tiny
from helpers import assert_one_line_error, drawn_lines, invoke



def history_rows(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_a_run_writes_samples_curves_and_tensorboard(tiny_corpus, tmp_path, monkeypatch):
    drawn = []  # how many epochs history.csv held each time the curves were drawn
    real_draw = curves_module.draw_curves

    def recording_draw(histories, labels):
        drawn.append(len(histories[0]["epoch"]))
        return real_draw(histories, labels)

    monkeypatch.setattr(curves_module, "draw_curves", recording_draw)
    run = train_tiny(tiny_corpus, tmp_path / "run", "train.epochs=3", "train.tensorboard=true",
                     "train.sample_length=6")

    # samples.txt: one entry per epoch, the default seed is the training text's start, two temperatures
    text = (run / "samples.txt").read_text()
    headers = re.findall(r"^epoch (\d+) \(val perplexity ([\d.,]+)\), seed \"(.*)\"$", text, re.M)
    assert [h[0] for h in headers] == ["1", "2", "3"]
    assert {h[2] for h in headers} == {"the cat sat on the mat. the"}  # first 8 tokens of the corpus
    for (epoch, ppl, _), row in zip(headers, history_rows(run)):
        assert float(ppl.replace(",", "")) == pytest.approx(float(row["val_perplexity"]), abs=0.006)
    assert len(re.findall(r"^  temperature 0\.5: \.\.\.", text, re.M)) == 3
    assert len(re.findall(r"^  temperature 1\.0: \.\.\.", text, re.M)) == 3

    # curves.png: a real PNG, redrawn after every epoch, with one point per epoch
    png = run / "curves.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    import matplotlib.image
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400 and image.std() > 0
    assert drawn == [1, 2, 3]
    figure = real_draw([curves_module.read_history(run)], [str(run)])
    curves = {c.metric: c for c in drawn_lines(figure, [str(run)])}
    assert set(curves) == {"loss", "val_loss", "val_perplexity"}
    rows = history_rows(run)
    for metric, curve in curves.items():
        assert curve.epochs == [1.0, 2.0, 3.0]
        np.testing.assert_allclose(curve.values, [float(r[metric]) for r in rows])

    # TensorBoard: event files for training and validation, each recorded in the training state
    for split in ("train", "validation"):
        events = list((run / "tensorboard" / split).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0, split
    logs = sorted(p.relative_to(run).as_posix() for p in (run / "tensorboard").rglob("*") if p.is_file())
    assert recorded_logs(run) == logs and len(logs) == 2
    # --restart removes exactly those: a person's file beside them stays
    (run / "tensorboard" / "train" / "my_notes.txt").write_text("mine")
    remove_run_files(run, recorded_logs(run))
    assert [p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()] == ["tensorboard/train/my_notes.txt"]


def test_sample_every_and_sample_seed(tiny_corpus, tmp_path):
    run = train_tiny(tiny_corpus, tmp_path / "run", "train.epochs=2", "train.sample_every=2",
                     "train.sample_seed=a dog", "train.sample_length=5")
    text = (run / "samples.txt").read_text()
    assert re.findall(r"^epoch (\d+)", text, re.M) == ["2"]
    assert 'seed "a dog"' in text
    assert not (run / "tensorboard").exists()  # off by default


def test_restart_removes_the_old_samples_curves_and_logs(tiny_run, tmp_path):
    from lstm_textgen.training.plan import plan_run
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert (run / "samples.txt").is_file() and (run / "curves.png").is_file()
    config = load_config(run / "config.yaml", [f"train.run_dir={run}"])
    plan = plan_run(config, run, "restart")
    assert plan.restart and plan.state is None
    remove_run_files(run)
    assert not any((run / name).exists() for name in ("samples.txt", "curves.png"))


def models_of(run):
    from lstm_textgen.model.stack import Models

    return Models(run.model, run.config.model, run.config.train)


def monitor_config(tiny_run, *settings):
    """The train: section the callbacks are made from: the tiny run's, with settings on top."""
    return load_config(tiny_run / "config.yaml", list(settings)).train


def test_callbacks_follow_the_settings(tiny_run):
    kinds = [type(c).__name__ for c in monitoring_callbacks(monitor_config(tiny_run), tiny_run, None, TrainingState())]
    assert kinds == ["SampleWriter", "CurvesWriter"]
    kinds = [type(c).__name__ for c in monitoring_callbacks(
        monitor_config(tiny_run, "train.sample_every=null", "train.tensorboard=true"), tiny_run, None,
        TrainingState())]
    assert kinds == ["CurvesWriter", "RecordedTensorBoard"]


def test_a_seed_with_no_known_word_is_refused_before_training(tiny_run):
    with pytest.raises(ConfigError, match="train.sample_seed 'zebra giraffe' has no word in the vocabulary"):
        monitoring_callbacks(monitor_config(tiny_run, "train.sample_seed=zebra giraffe"), tiny_run, None,
                             TrainingState())


def test_tensorboard_without_its_package_is_a_clear_error(tiny_run, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        monitoring_callbacks(monitor_config(tiny_run, "train.tensorboard=true"), tiny_run, None, TrainingState())


def test_samples_use_the_epochs_own_weights_even_when_its_checkpoint_was_pruned(tiny_run, tmp_path):
    from lstm_textgen.run.rundir import load_run
    run = load_run(tiny_run)
    writer = SampleWriter(tiny_run, run.config.train, run.tokenizer, "the cat", models_of(run))
    writer.set_model(run.model)
    weights = writer._weights(99)  # no checkpoints/epoch_099.keras: the live model is saved and read
    expected = run.weights
    for got, want in zip(weights.layers, expected.layers):
        assert got["class_name"] == want["class_name"]
        for a, b in zip(got["weights"].get("vars", []), want["weights"].get("vars", [])):
            np.testing.assert_array_equal(a, b)


def test_sample_writer_appends_an_entry(tiny_run, tmp_path):
    from lstm_textgen.run.rundir import load_run
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    run = load_run(run_dir)
    writer = SampleWriter(run_dir, run.config.train, run.tokenizer, "the dog", models_of(run))
    writer.set_model(run.model)
    writer.on_epoch_end(1, {"val_loss": 2.0})  # epoch 2's checkpoint exists
    writer.on_epoch_end(1, {"val_loss": 2.0})
    text = (run_dir / "samples.txt").read_text()
    assert text.count('epoch 2 (val perplexity 7.39), seed "the dog"') == 2
    assert text.endswith("\n\n")


def test_format_samples_indents_every_line():
    entry = format_samples(4, None, 'say "hi"\nnow', [" a b\nc d\n\ne", "f"])
    assert entry.splitlines() == ['epoch 4, seed "say \\"hi\\"\\nnow"',
                                  "  temperature 0.5: ...a b",
                                  "      c d",
                                  "",
                                  "      e",
                                  "  temperature 1.0: ...f"]


def test_curves_writer_draws_the_png(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    (run_dir / "curves.png").unlink()
    CurvesWriter(run_dir).on_epoch_end(1)
    assert (run_dir / "curves.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("setting, message", [
    ("train.sample_every=0", "train.sample_every must be >= 1, or null"),
    ("train.sample_length=0", "train.sample_length must be >= 1"),
    ("train.sample_seed=' '", "train.sample_seed must be a phrase"),
    ("train.tensorboard=3", "train.tensorboard must be bool"),
])
def test_bad_monitor_settings_are_refused(setting, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [setting])


def test_cli_train_refuses_an_unusable_sample_seed_in_one_line(tiny_corpus, tmp_path):
    result = invoke("train", tiny_corpus, "--run", tmp_path / "run", *[a for s in TINY_SETTINGS for a in ("--set", s)],
                    "--set", "train.sample_seed=zebra")
    assert_one_line_error(result, "train.sample_seed 'zebra' has no word in the vocabulary")
