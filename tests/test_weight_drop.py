"""model.weight_drop: DropConnect on the LSTM's recurrent kernel in the unrolled training step (AWD-LSTM),
nothing at validation, a plain LSTM saved, and refused where Keras' own step would train."""
import numpy as np
import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.config import load_config
from lstm_textgen.fast.step import _loss_and_probs, use_unrolled_step
from lstm_textgen.model import Models, build_model, compile_model

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

VOCAB, WINDOW, BATCH, RATE = 50, 6, 5, 0.4


def _model():
    config = load_config(None, ["model.objective=sequence", "model.units=12", "model.dense_units=10", "embedding.dim=8",
                                "model.dropout=0", "model.dense_dropout=0", f"model.weight_drop={RATE}"])
    keras.utils.set_random_seed(2)
    model = Models(build_model(config.model, VOCAB, config.embedding.dim), config.model, config.train).training
    compile_model(model, config.train)
    return model


def _batch(seed=0):
    x = np.random.default_rng(seed).integers(1, VOCAB, size=(BATCH, WINDOW + 1)).astype("int32")
    return tf.constant(x[:, :-1]), tf.constant(x[:, 1:])


def _loss_and_recurrent_gradient(model, weight_drop):
    x, y = _batch()
    kernel = model.get_layer("lstm_1").cell.recurrent_kernel
    with tf.GradientTape() as tape:
        loss, _, _ = _loss_and_probs(model, x, y, training=True, weight_drop=weight_drop)
    return float(loss), tape.gradient(loss, kernel.value).numpy()


def test_weight_drop_is_the_step_of_the_lstm_whose_recurrent_kernel_is_masked():
    model = _model()
    cell = model.get_layer("lstm_1").cell
    seeds = [v.numpy() for v in model.non_trainable_variables]
    loss, gradient = _loss_and_recurrent_gradient(model, RATE)
    for v, value in zip(model.non_trainable_variables, seeds):  # the same draw again: the mask the step used
        v.assign(value)
    mask = keras.random.dropout(tf.ones_like(cell.recurrent_kernel.value), RATE, seed=cell.seed_generator).numpy()
    assert 0.45 < np.mean(mask == 0) / RATE < 1.55  # a share near RATE of the weights dropped
    full = cell.recurrent_kernel.numpy()
    cell.recurrent_kernel.assign(full * mask)
    masked_loss, masked_gradient = _loss_and_recurrent_gradient(model, 0.0)
    assert loss == pytest.approx(masked_loss, rel=1e-6)
    np.testing.assert_allclose(gradient, masked_gradient * mask, atol=1e-6)  # dropped weights get no gradient
    assert np.all(gradient[mask == 0] == 0)
    cell.recurrent_kernel.assign(full)


def test_each_batch_draws_a_new_mask_and_validation_drops_nothing():
    model = _model()
    plain = _model()
    assert _loss_and_recurrent_gradient(model, RATE)[0] != _loss_and_recurrent_gradient(model, RATE)[0]
    use_unrolled_step(model, weight_drop=RATE)
    x, y = _batch(3)
    model.train_on_batch(x, y)
    plain.set_weights(model.get_weights())
    assert model.test_on_batch(x, y) == pytest.approx(plain.test_on_batch(x, y), rel=1e-6)


def test_a_run_with_weight_drop_trains_on_the_unrolled_step_and_saves_a_plain_lstm(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    settings = ["model.weight_drop=0.3", "train.epochs=2", "train.batch_size=8", "model.units=8",
                "data.window_size=5", "train.sample_every=null"]
    result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run_dir),
                                      *[a for s in settings for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(run_dir / "model.keras")
    lstm = model.get_layer("lstm_1")
    assert type(lstm) is keras.layers.LSTM and lstm.recurrent_dropout == 0
    assert np.all(lstm.cell.recurrent_kernel.numpy() != 0)  # trained whole: the masks were only in the steps


@pytest.mark.parametrize("setting,reason", [("train.unrolled=false", "train.unrolled is false"),
                                            ("model.rnn=gru", "it covers one-directional LSTM stacks")])
def test_weight_drop_is_refused_where_keras_own_step_would_train(tiny_corpus, tmp_path, setting, reason):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run_dir), "--set",
                                      "model.weight_drop=0.3", "--set", setting, "--set", "train.epochs=1"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert lines == [f"Error: model.weight_drop=0.3 needs the unrolled CPU step, and this run would train on Keras' "
                     f"own step ({reason}); set --set model.weight_drop=0"]
    assert not run_dir.exists()  # nothing written
