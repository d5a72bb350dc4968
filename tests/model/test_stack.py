"""The Sequential stack (named layers, the reference model exactly, both objectives, save and reload) and the
training variants: stateful layers carrying their state, a tied output, and the plain stack that is saved."""
import keras
import numpy as np
import pytest

from lstm_textgen.config import TrainConfig, load_config
from lstm_textgen.model.stack import build_model, compile_model

from lstm_textgen.run.rundir import load_run

from conftest import REPO, train_tiny


def test_reference_model_is_the_design_stack():
    config = load_config(REPO / "configs" / "reference.yaml")
    model = build_model(config.model, 10000, config.embedding.dim)
    kinds = [(layer.name, type(layer).__name__) for layer in model.layers]
    assert kinds == [("embedding", "Embedding"), ("masking", "Masking"), ("lstm_1", "LSTM"), ("dense", "Dense"),
                     ("dense_dropout", "Dropout"), ("next_word", "Dense")]
    emb, lstm = model.get_layer("embedding"), model.get_layer("lstm_1")
    assert (emb.input_dim, emb.output_dim, emb.mask_zero) == (10000, 100, True)
    assert model.get_layer("masking").mask_value == 0.0
    assert (lstm.units, lstm.dropout, lstm.recurrent_dropout, lstm.return_sequences) == (64, 0.1, 0.1, False)
    assert model.get_layer("dense").units == 64 and model.get_layer("dense").activation.__name__ == "relu"
    assert model.get_layer("dense_dropout").rate == 0.5
    assert model.get_layer("next_word").activation.__name__ == "softmax"
    assert model.output_shape == (None, 10000)


@pytest.mark.parametrize("overrides, output_shape", [
    (["model.objective=sequence"], (2, 7, 50)),
    (["model.objective=last", "model.layers=3", "model.rnn=gru"], (2, 50)),
    (["model.objective=last", "model.bidirectional=true", "model.layers=2"], (2, 50)),
])
def test_objectives_and_stacks(overrides, output_shape):
    config = load_config(None, ["model.units=4", "model.dense_units=4", *overrides])
    model = build_model(config.model, 50, 6)
    out = model(np.ones((2, 7), np.int32))
    assert tuple(out.shape) == output_shape
    np.testing.assert_allclose(np.asarray(out).sum(-1), 1.0, rtol=1e-5)
    names = [layer.name for layer in model.layers]
    assert [n for n in names if n.startswith(config.model.rnn)] == [f"{config.model.rnn}_{i + 1}"
                                                                    for i in range(config.model.layers)]


@pytest.mark.parametrize("overrides", [[], ["model.rnn=gru"], ["model.objective=last", "model.bidirectional=true"]])
def test_input_dropout_is_the_first_recurrent_layers_and_dropout_the_others(overrides):
    def rates(*settings):
        config = load_config(None, ["model.units=4", "model.dense_units=4", "model.layers=3", *overrides, *settings])
        model = build_model(config.model, 50, 6)
        layers = [model.get_layer(name) for name in config.model.recurrent_layers()]
        return [getattr(layer, "forward_layer", layer).dropout for layer in layers]

    assert rates("model.dropout=0.3", "model.input_dropout=0.6") == [0.6, 0.3, 0.3]
    assert rates("model.dropout=0.3", "model.input_dropout=0") == [0.0, 0.3, 0.3]
    assert rates("model.dropout=0.3") == [0.3, 0.3, 0.3]  # null: every layer takes model.dropout


def test_embedding_matrix_initialises_and_freezes():
    config = load_config(None, ["model.units=4", "model.dense_units=4"])
    matrix = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    model = build_model(config.model, 20, 6, matrix, embedding_trainable=False)
    np.testing.assert_array_equal(model.get_layer("embedding").get_weights()[0], matrix)
    assert not model.get_layer("embedding").trainable


def test_save_and_reload_give_the_same_predictions(tmp_path):
    from lstm_textgen.run.files import save_model
    config = load_config(None, ["model.units=4", "model.dense_units=4"])
    model = build_model(config.model, 30, 5)
    compile_model(model, TrainConfig())
    x = np.random.default_rng(1).integers(1, 30, size=(3, 9)).astype(np.int32)
    save_model(model, tmp_path / "model.keras")
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no temporary file left behind
    reloaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(model(x)), atol=1e-6)


def test_compile_uses_adam_with_clipnorm_and_sparse_targets():
    config = load_config(None, ["model.units=4", "model.dense_units=4", "train.learning_rate=0.01",
                                "train.clipnorm=0.5"])
    model = build_model(config.model, 30, 5)
    compile_model(model, config.train)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.clipnorm == 0.5
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    history = model.fit(np.ones((4, 5), np.int32), np.ones((4, 5), np.int32), verbose=0)  # sparse ids as targets
    assert np.isfinite(history.history["loss"][0])


def test_clipnorm_really_clips_the_gradient():
    """Adam's first step is about lr * g / |g| per weight; with g clipped far below Adam's epsilon (1e-7)
    the step shrinks about a hundredfold, so the clipped model moves much less from the same start."""
    moved = {}
    for clipnorm in ("null", "1.0e-9"):
        keras.utils.set_random_seed(3)
        config = load_config(None, ["model.units=4", "model.dense_units=4", f"train.clipnorm={clipnorm}",
                                    "model.dropout=0", "model.dense_dropout=0"])
        model = build_model(config.model, 30, 5)
        compile_model(model, config.train)
        before = [w.copy() for w in model.get_weights()]
        model.train_on_batch(np.full((4, 5), 3, np.int32), np.full((4, 5), 7, np.int32))
        moved[clipnorm] = max(np.abs(a - b).max() for a, b in zip(model.get_weights(), before))
    assert moved["null"] >= 1.0e-3 * 0.99  # lr 1e-3: the unclipped step is at least the learning rate
    assert moved["1.0e-9"] < moved["null"] / 50


@pytest.mark.parametrize("unrolled", [False, True])
def test_sgd_with_a_global_clipnorm_steps_lr_times_the_clipped_norm(unrolled):
    """Plain SGD moves the weights by lr * g; clipped by the global norm, all weights together move by exactly
    lr * global_clipnorm (a gradient much larger than the clip), in Keras' step and in the unrolled one.
    No token repeats in the batch: Keras takes the norm of a sparse gradient over its occurrences."""
    from lstm_textgen.model.step import use_unrolled_step

    keras.utils.set_random_seed(3)
    config = load_config(None, ["model.units=4", "model.dense_units=4", "model.dropout=0", "model.dense_dropout=0",
                                "model.recurrent_dropout=0", "train.optimizer=sgd", "train.learning_rate=2.0",
                                "train.clipnorm=null", "train.global_clipnorm=1.0e-3"])
    model = build_model(config.model, 30, 5)
    compile_model(model, config.train)
    if unrolled:
        use_unrolled_step(model)
    assert isinstance(model.optimizer, keras.optimizers.SGD) and model.optimizer.global_clipnorm == 1.0e-3
    before = [w.copy() for w in model.get_weights()]
    x = np.arange(1, 21, dtype=np.int32).reshape(4, 5)
    model.train_on_batch(x, x + 5)
    step = np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(model.get_weights(), before)))
    assert step == pytest.approx(2.0 * 1.0e-3, rel=1e-4)


TINY_MODEL = ["model.units=8", "model.dense_units=8", "embedding.dim=8", "data.window_size=5", "train.batch_size=3"]


def build(overrides, vocab=12):
    from lstm_textgen.model.stack import Models, build_model, compile_model

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
    from lstm_textgen.model.stack import reset_streams
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
    from lstm_textgen.model.stepper import Stepper, softmax
    _, logits = Stepper(run.weights).prefill([ids])
    np.testing.assert_allclose(softmax(logits)[0], np.asarray(model(np.array([ids])))[0, -1], atol=1e-5)


def test_init_range_starts_the_embedding_and_the_output_uniform_in_it():
    config = load_config(None, ["model.init_range=0.1", "model.units=8", "model.dense_units=6", "embedding.dim=6"])
    model = build_model(config.model, 5000, config.embedding.dim)
    for layer, index in (("embedding", 0), ("next_word", 0)):
        weights = model.get_layer(layer).get_weights()[index]
        assert np.abs(weights).max() <= 0.1 and weights.std() == pytest.approx(0.1 / np.sqrt(3), rel=0.05)
    default = build_model(load_config(None, ["model.units=8", "model.dense_units=6", "embedding.dim=6"]).model,
                          5000, 6)
    assert np.abs(default.get_layer("embedding").get_weights()[0]).max() <= 0.05  # Keras' own uniform +-0.05
