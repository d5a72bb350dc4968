"""AWD-LSTM's regularisation in the unrolled training step: model.weight_drop (DropConnect on the LSTM's
recurrent kernel), model.embedding_dropout (whole embedding rows), model.activation_reg and temporal_reg (the
AR and TAR penalties); nothing at validation, a plain stack saved, and refused where Keras' own step would
train."""
import numpy as np
import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.config import load_config
from lstm_textgen.model.lstm import softmax_cross_entropy
from lstm_textgen.model.step import Regularization, _loss_and_probs, features, head_weights, use_unrolled_step
from lstm_textgen.model.stack import Models, build_model, compile_model

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

VOCAB, WINDOW, BATCH, RATE = 50, 6, 5, 0.4
AR, TAR = 20.0, 10.0  # model.activation_reg and temporal_reg in the penalty tests


def _model(*settings):
    config = load_config(None, ["model.objective=sequence", "model.units=12", "model.dense_units=10", "embedding.dim=8",
                                "model.dropout=0", "model.dense_dropout=0", f"model.weight_drop={RATE}", *settings])
    keras.utils.set_random_seed(2)
    model = Models(build_model(config.model, VOCAB, config.embedding.dim), config.model, config.train).training
    compile_model(model, config.train)
    return model


def _batch(seed=0):
    x = np.random.default_rng(seed).integers(1, VOCAB, size=(BATCH, WINDOW + 1)).astype("int32")
    return tf.constant(x[:, :-1]), tf.constant(x[:, 1:])


def _seeds(model):
    return [v.numpy() for v in model.non_trainable_variables]


def _restore(model, seeds):
    for v, value in zip(model.non_trainable_variables, seeds):
        v.assign(value)


def _loss_and_recurrent_gradient(model, weight_drop):
    x, y = _batch()
    kernel = model.get_layer("lstm_1").cell.recurrent_kernel
    with tf.GradientTape() as tape:
        loss, _, _, _ = _loss_and_probs(model, x, y, training=True, regularization=Regularization(weight_drop=weight_drop))
    return float(loss), tape.gradient(loss, kernel.value).numpy()


def test_weight_drop_is_the_step_of_the_lstm_whose_recurrent_kernel_is_masked():
    model = _model()
    cell = model.get_layer("lstm_1").cell
    seeds = _seeds(model)
    loss, gradient = _loss_and_recurrent_gradient(model, RATE)
    _restore(model, seeds)  # the same draw again: the mask the step used
    mask = keras.random.dropout(tf.ones_like(cell.recurrent_kernel.value), RATE, seed=cell.seed_generator).numpy()
    assert 0.45 < np.mean(mask == 0) / RATE < 1.55  # a share near RATE of the weights dropped
    full = cell.recurrent_kernel.numpy()
    cell.recurrent_kernel.assign(full * mask)
    masked_loss, masked_gradient = _loss_and_recurrent_gradient(model, 0.0)
    assert loss == pytest.approx(masked_loss, rel=1e-6)
    np.testing.assert_allclose(gradient, masked_gradient * mask, atol=1e-6)  # dropped weights get no gradient
    assert np.all(gradient[mask == 0] == 0)
    cell.recurrent_kernel.assign(full)


def _embedding_loss_and_gradient(model, embedding_dropout):
    x, y = _batch()
    embeddings = model.get_layer("embedding").embeddings
    with tf.GradientTape() as tape:
        loss, _, _, _ = _loss_and_probs(model, x, y, training=True,
                                        regularization=Regularization(embedding_dropout=embedding_dropout))
    return float(loss), tape.gradient(loss, embeddings.value), x, y


def _rows_drawn(model):
    """The (vocab, 1) row mask the step's first draw gives: it uses the first LSTM cell's seed generator."""
    return keras.random.dropout(tf.ones([VOCAB, 1]), RATE, seed=model.get_layer("lstm_1").cell.seed_generator).numpy()


def test_embedding_dropout_is_the_step_of_the_stack_whose_dropped_words_are_zero_rows():
    model = _model()
    seeds = _seeds(model)
    loss, gradient, x, _ = _embedding_loss_and_gradient(model, RATE)
    _restore(model, seeds)
    rows = _rows_drawn(model)
    assert 0.45 < np.mean(rows == 0) / RATE < 1.55  # a share near RATE of the vocabulary dropped
    np.testing.assert_allclose(np.unique(rows), [0, 1 / (1 - RATE)], rtol=1e-6)  # the kept rows scaled up
    embeddings = model.get_layer("embedding").embeddings
    full = embeddings.numpy()
    embeddings.assign(full * rows)
    masked_loss, masked_gradient, _, _ = _embedding_loss_and_gradient(model, 0.0)
    embeddings.assign(full)
    assert loss == pytest.approx(masked_loss, rel=1e-6)
    gradient, masked_gradient = tf.convert_to_tensor(gradient).numpy(), tf.convert_to_tensor(masked_gradient).numpy()
    np.testing.assert_allclose(gradient, masked_gradient * rows, atol=1e-6)
    dropped_inputs = np.intersect1d(np.flatnonzero(rows[:, 0] == 0), x.numpy())
    kept_inputs = np.intersect1d(np.flatnonzero(rows[:, 0] != 0), x.numpy())
    assert len(dropped_inputs) and len(kept_inputs)  # the batch has words of both kinds
    assert np.all(gradient[dropped_inputs] == 0) and np.all(np.abs(gradient[kept_inputs]).sum(axis=1) > 0)


def test_with_tied_weights_embedding_dropout_leaves_the_softmax_every_row():
    model = _model("model.tie_weights=true", "model.dense_units=8", "model.dense_activation=linear")
    seeds = _seeds(model)
    loss, gradient, x, y = _embedding_loss_and_gradient(model, RATE)
    _restore(model, seeds)
    rows = _rows_drawn(model)
    embeddings = model.get_layer("embedding").embeddings
    full = embeddings.numpy()
    embeddings.assign(full * rows)
    dropped_features = features(model, x, training=True)  # the LSTM sees the dropped rows...
    embeddings.assign(full)
    targets = tf.reshape(tf.transpose(y), [-1])
    kernel, bias, vocab_major = head_weights(model)  # ...the softmax all of them
    expected, _ = softmax_cross_entropy(dropped_features, kernel, bias, targets, rows=vocab_major)
    assert loss == pytest.approx(float(expected), rel=1e-6)
    dropped = np.flatnonzero(rows[:, 0] == 0)
    assert len(dropped) and np.all(np.abs(tf.convert_to_tensor(gradient).numpy()[dropped]).sum(axis=1) > 0)


def _keras_loss_and_penalties(model, x, y, activation, temporal):
    """The cross-entropy and AR / TAR computed from the Keras layers themselves (no dropout in _model)."""
    h = model.get_layer("lstm_1")(model.get_layer("embedding")(x))  # (batch, time, units)
    inputs = model.get_layer("dense")(h)
    probs = model.get_layer("next_word")(inputs)
    loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))
    return loss, activation * tf.reduce_mean(inputs ** 2) + temporal * tf.reduce_mean((h[:, 1:] - h[:, :-1]) ** 2)


def test_the_step_descends_the_cross_entropy_plus_ar_and_tar_of_the_keras_stack():
    model = _model("model.init_range=1")  # activations large enough for the penalties to weigh
    x, y = _batch()
    regularization = Regularization(activation=AR, temporal=TAR)
    with tf.GradientTape() as tape:
        loss, _, _, penalty = _loss_and_probs(model, x, y, training=True, regularization=regularization)
        total = loss + penalty
    ours = tape.gradient(total, model.trainable_weights)
    with tf.GradientTape() as tape:
        keras_loss, keras_penalty = _keras_loss_and_penalties(model, x, y, AR, TAR)
        keras_total = keras_loss + keras_penalty
    theirs = tape.gradient(keras_total, model.trainable_weights)
    assert float(penalty) > 0.01 * float(loss)  # large enough to matter
    assert float(loss) == pytest.approx(float(keras_loss), rel=1e-5)
    assert float(penalty) == pytest.approx(float(keras_penalty), rel=1e-5)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(), atol=1e-5)
    _, _, _, nothing = _loss_and_probs(model, x, y, training=False, regularization=regularization)
    assert float(nothing) == 0.0  # validation scores the cross-entropy alone


def test_the_penalties_change_the_update_not_the_reported_loss():
    x, y = _batch(4)
    penalised, plain = _model("model.init_range=1"), _model("model.init_range=1")
    use_unrolled_step(penalised, regularization=Regularization(activation=AR, temporal=TAR))
    use_unrolled_step(plain)
    before = float(_loss_and_probs(plain, x, y, training=True)[0])
    assert penalised.train_on_batch(x, y)[0] == pytest.approx(before, rel=1e-6)  # the cross-entropy, as plain's
    assert plain.train_on_batch(x, y)[0] == pytest.approx(before, rel=1e-6)
    moved = [np.abs(a - b).max() for a, b in zip(penalised.get_weights(), plain.get_weights())]
    assert max(moved) > 1e-5


def test_temporal_reg_needs_a_target_at_every_position(tiny_corpus, tmp_path):
    result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(tmp_path / "run"), "--set",
                                      "model.temporal_reg=1", "--set", "model.objective=last"])
    assert result.exit_code != 0
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] == [
        "Error: model.temporal_reg penalises the change of the last LSTM's output from one position to the next, "
        "which needs model.objective=sequence; set --set model.objective=sequence or model.temporal_reg=0"]


def test_each_batch_draws_new_masks_and_validation_drops_nothing():
    model = _model()
    plain = _model()
    assert _loss_and_recurrent_gradient(model, RATE)[0] != _loss_and_recurrent_gradient(model, RATE)[0]
    use_unrolled_step(model, regularization=Regularization(weight_drop=RATE, embedding_dropout=RATE))
    x, y = _batch(3)
    model.train_on_batch(x, y)
    plain.set_weights(model.get_weights())
    assert model.test_on_batch(x, y) == pytest.approx(plain.test_on_batch(x, y), rel=1e-6)


def test_a_run_with_all_four_trains_on_the_unrolled_step_and_saves_a_plain_stack(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    settings = ["model.weight_drop=0.3", "model.embedding_dropout=0.2", "model.activation_reg=2",
                "model.temporal_reg=1", "train.epochs=2", "train.batch_size=8", "model.units=8",
                "data.window_size=5", "train.sample_every=null"]
    result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run_dir),
                                      *[a for s in settings for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(run_dir / "model.keras")
    lstm = model.get_layer("lstm_1")
    assert type(lstm) is keras.layers.LSTM and lstm.recurrent_dropout == 0
    assert np.all(lstm.cell.recurrent_kernel.numpy() != 0)  # trained whole: the masks were only in the steps
    assert [type(layer).__name__ for layer in model.layers][:2] == ["Embedding", "Masking"]
    assert np.all(np.abs(model.get_layer("embedding").embeddings.numpy()).sum(axis=1) > 0)


@pytest.mark.parametrize("key", ["weight_drop", "embedding_dropout", "activation_reg", "temporal_reg"])
@pytest.mark.parametrize("setting,reason", [("train.unrolled=false", "train.unrolled is false"),
                                            ("model.rnn=gru", "it covers one-directional LSTM stacks")])
def test_each_is_refused_where_keras_own_step_would_train(tiny_corpus, tmp_path, setting, reason, key):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(run_dir), "--set",
                                      f"model.{key}=0.3", "--set", setting, "--set", "train.epochs=1"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert lines == [f"Error: model.{key}=0.3 needs the unrolled CPU step, and this run would train on Keras' "
                     f"own step ({reason}); set --set model.{key}=0"]
    assert not run_dir.exists()  # nothing written
