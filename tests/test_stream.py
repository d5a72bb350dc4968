"""Stateful streams (truncated BPTT) and tied output weights: the data, the carried state, exact resume,
and the plain stack that is saved."""
import csv

import numpy as np
import pytest

from lstm_textgen.rundir import load_run
from lstm_textgen.config import load_config
from lstm_textgen.data import make_stream_dataset, stream_windows

from conftest import train_tiny

TINY_MODEL = ["model.units=8", "model.dense_units=8", "embedding.dim=8", "data.window_size=5", "train.batch_size=3"]


def history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


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


def build(overrides, vocab=12):
    from lstm_textgen.model import Models, build_model, compile_model

    config = load_config(None, TINY_MODEL + overrides)
    plain = build_model(config.model, vocab, config.embedding.dim)
    model = Models(plain, config.model, config.train).training
    compile_model(model, config.train)
    return config, plain, model


def test_the_stateful_model_carries_its_state_from_batch_to_batch():
    """Window 2 after window 1 is scored as the plain model scores the two windows as one sequence."""
    import keras

    keras.utils.set_random_seed(1)
    _, plain, model = build(["train.stateful=true"])
    ids = np.random.default_rng(0).integers(2, 12, size=(3, 10)).astype(np.int32)
    first = model.predict_on_batch(ids[:, :5])
    second = model.predict_on_batch(ids[:, 5:])
    whole = np.asarray(plain(ids, training=False))
    np.testing.assert_allclose(first, whole[:, :5], atol=1e-5)
    np.testing.assert_allclose(second, whole[:, 5:], atol=1e-5)
    from lstm_textgen.model import reset_streams
    reset_streams(model)
    np.testing.assert_allclose(model.predict_on_batch(ids[:, 5:]), np.asarray(plain(ids[:, 5:])), atol=1e-5)


def test_tied_output_gets_gradients_into_the_embedding():
    import tensorflow as tf

    _, plain, model = build(["model.tie_weights=true"])
    assert model.count_params() == plain.count_params() - 8 * 12  # no output kernel of its own
    inputs, targets = np.full((2, 5), 2, np.int32), np.full((2, 5), 3, np.int32)
    embedding = model.get_layer("embedding").embeddings
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(targets, model(inputs, training=True)))
    grad = tf.convert_to_tensor(tape.gradient(loss, embedding)).numpy()
    assert np.abs(grad[3]).sum() > 0 and np.abs(grad[7]).sum() > 0  # rows never fed in: only the output reaches them


@pytest.mark.parametrize("extra", [["model.tie_weights=true"], ["train.stateful=true"],
                                   ["train.stateful=true", "model.tie_weights=true", "model.rnn=gru", "model.layers=2"]])
def test_the_saved_model_is_the_plain_stack(tiny_corpus, tmp_path, extra):
    run = load_run(train_tiny(tiny_corpus, tmp_path / "run", *extra, "train.batch_size=3"))
    model = run.model
    assert [type(layer).__name__ for layer in model.layers][-1] == "Dense"
    assert not any(getattr(layer, "stateful", False) for layer in model.layers)
    layers = {layer["config"]["name"]: layer for layer in run.weights.layers}  # as the numpy stepper reads them
    embedding, kernel = layers["embedding"]["weights"]["vars"][0], layers["next_word"]["weights"]["vars"][0]
    if "model.tie_weights=true" in extra:
        np.testing.assert_array_equal(kernel, embedding.T)
    ids = run.tokenizer.encode("the cat sat on the")
    from lstm_textgen.fast.stepper import Stepper, softmax
    _, logits = Stepper(run.weights).prefill([ids])
    np.testing.assert_allclose(softmax(logits)[0], np.asarray(model(np.array([ids])))[0, -1], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["train.stateful=true"], ["train.stateful=true", "model.tie_weights=true"]])
def test_stateful_run_stopped_mid_epoch_resumes_exactly(tiny_corpus, tmp_path, monkeypatch, extra):
    from lstm_textgen.callbacks import Backup
    from lstm_textgen.resume import Stopped

    settings = [*extra, "train.batch_size=3", "train.epochs=2", "train.steps_per_epoch=6", "model.dropout=0.2"]
    whole = history(train_tiny(tiny_corpus, tmp_path / "whole", *settings))
    original = Backup.on_train_batch_end

    def stop_at_step_9(self, batch, logs=None):  # the middle of epoch 2, with the state carried 3 batches
        self.session.stop_requested = self.session.state.global_step == 9
        original(self, batch, logs)

    monkeypatch.setattr(Backup, "on_train_batch_end", stop_at_step_9)
    with pytest.raises(Stopped):
        train_tiny(tiny_corpus, tmp_path / "parts", *settings)
    monkeypatch.setattr(Backup, "on_train_batch_end", original)
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
