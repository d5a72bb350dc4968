"""The unrolled CPU training step computes what Keras' own step computes, on the same model and weights."""
import numpy as np
import pytest

from lstm_textgen.config import Config, load_config
from lstm_textgen.model.stack import build_model, compile_model
from lstm_textgen.model.step import (_chains, _lstm, features, head_weights, unrolled_blocker,
                                   use_unrolled_step)

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

VOCAB, WINDOW, BATCH = 120, 7, 6


def blocker(config, strategy=None):
    return unrolled_blocker(config.model, config.embedding, config.train, strategy)


def forward(model, ids, training):
    """The unrolled pass's logits, time-major (time * batch, vocab) for `sequence`."""
    kernel, bias, rows = head_weights(model)
    return tf.nn.bias_add(tf.matmul(features(model, ids, training), kernel, transpose_b=rows), bias)


def _pair(objective="last", layers=1, dropout=0.0, recurrent_dropout=0.0, dense_dropout=0.0, clipnorm=None,
          extra=()):
    """Two compiled copies of one model with equal weights: one keeps Keras' step, one gets the unrolled step."""
    config = load_config(None, [f"model.objective={objective}", f"model.layers={layers}", "model.units=12",
                                "model.dense_units=10", f"model.dropout={dropout}",
                                f"model.recurrent_dropout={recurrent_dropout}", f"model.dense_dropout={dense_dropout}",
                                "embedding.dim=9", f"train.clipnorm={'null' if clipnorm is None else clipnorm}",
                                *extra])
    models = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        model = build_model(config.model, VOCAB, config.embedding.dim)
        compile_model(model, config.train)
        models.append(model)
    use_unrolled_step(models[1])
    return config, models[0], models[1]


def _batch(objective, seed=0, rows=BATCH):
    """No token twice in a batch: Keras' Adam and Adam proper differ on a repeated row (see the test below)."""
    rng = np.random.default_rng(seed)
    x = rng.permutation(np.arange(1, VOCAB))[:rows * (WINDOW + 1)].reshape(rows, WINDOW + 1).astype("int32")
    return (x[:, :-1], x[:, -1]) if objective == "last" else (x[:, :-1], x[:, 1:])


@pytest.mark.parametrize("objective,layers,extra", [("last", 1, []), ("sequence", 1, []), ("last", 2, []),
                                                    ("sequence", 2, ["model.dense_activation=linear"]),
                                                    ("last", 1, ["model.dense_activation=tanh"])])
def test_forward_equals_the_keras_model(objective, layers, extra):
    _, plain, _ = _pair(objective, layers, extra=extra)
    x, _ = _batch(objective)
    probs = plain(x, training=False).numpy()
    logits = forward(plain, tf.constant(x), training=False).numpy()
    if objective == "sequence":
        logits = logits.reshape(WINDOW, BATCH, VOCAB).transpose(1, 0, 2)  # time-major -> (batch, time, vocab)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probs, atol=1e-6)


@pytest.mark.parametrize("objective,layers,clipnorm", [("last", 1, None), ("sequence", 2, None), ("last", 1, 0.05)])
def test_train_steps_update_the_weights_as_keras_does(objective, layers, clipnorm):
    """Without dropout both steps are deterministic: after three Adam steps the weights agree."""
    _, plain, fast = _pair(objective, layers, clipnorm=clipnorm)
    batches = [_batch(objective, seed) for seed in range(3)]
    logs = [[model.train_on_batch(x, y, return_dict=True) for x, y in batches] for model in (plain, fast)]
    for theirs, ours in zip(*logs):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
        assert ours["accuracy"] == pytest.approx(theirs["accuracy"])
    for a, b in zip(plain.get_weights(), fast.get_weights()):
        np.testing.assert_allclose(b, a, atol=2e-6)
    assert int(fast.optimizer.iterations) == 3


@pytest.mark.parametrize("rows", [5, 6])
def test_an_odd_batch_steps_as_one_chain_an_even_one_as_two_and_both_train_as_keras_does(rows, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    assert _chains(rows) == 1  # one core: a second chain would only add ops
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert _chains(rows) == (2 if rows % 2 == 0 else 1) and _chains(None) == 1
    _, plain, fast = _pair("sequence", 2)  # trained as on two cores, whatever this machine has
    for seed in range(2):
        x, y = _batch("sequence", seed, rows)
        theirs, ours = (model.train_on_batch(x, y, return_dict=True) for model in (plain, fast))
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    for a, b in zip(plain.get_weights(), fast.get_weights()):
        np.testing.assert_allclose(b, a, atol=2e-6)


def test_a_token_repeated_in_a_batch_gets_adams_step_on_its_summed_gradient():
    """Adam's second moment is the square of the whole gradient of the row, (g1 + g2)^2, not g1^2 + g2^2."""
    _, _, fast = _pair("last")
    x = np.full((BATCH, WINDOW), 5, dtype="int32")  # one token everywhere
    y = np.arange(BATCH, dtype="int32")
    table = fast.get_layer("embedding").embeddings
    before = table.numpy().copy()
    with tf.GradientTape() as tape:
        loss = fast.compute_loss(x, y, fast(x, training=True))
    grad = tf.convert_to_tensor(tape.gradient(loss, table.value)).numpy()[5]  # summed over the repeats
    fast.train_on_batch(x, y)
    optimizer = fast.optimizer
    m, v = (1 - optimizer.beta_1) * grad, (1 - optimizer.beta_2) * grad ** 2
    alpha = optimizer.learning_rate.numpy() * np.sqrt(1 - optimizer.beta_2) / (1 - optimizer.beta_1)
    np.testing.assert_allclose(table.numpy()[5], before[5] - alpha * m / (np.sqrt(v) + optimizer.epsilon), atol=1e-7)
    np.testing.assert_array_equal(table.numpy()[6], before[6])  # a row without gradient does not move


def _training_pair(config):
    """Two compiled training models (model.Models) with equal weights; the second on the unrolled step."""
    from lstm_textgen.model.stack import Models

    models = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        model = Models(build_model(config.model, VOCAB, config.embedding.dim), config.model, config.train).training
        compile_model(model, config.train)
        models.append(model)
    use_unrolled_step(models[1])
    return models


def test_a_tied_output_layer_trains_as_keras_trains_it():
    """model.tie_weights: the softmax kernel is the embedding transposed, so the embedding gets both gradients."""
    config = load_config(None, ["model.tie_weights=true", "model.units=12", "model.dense_units=9", "embedding.dim=9",
                                "model.dropout=0", "model.dense_dropout=0", "model.objective=sequence"])
    plain, fast = _training_pair(config)
    for seed in range(3):
        x, y = _batch("sequence", seed)
        theirs, ours = (model.train_on_batch(x, y, return_dict=True) for model in (plain, fast))
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    for a, b in zip(plain.get_weights(), fast.get_weights()):
        np.testing.assert_allclose(b, a, atol=2e-6)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_stateful_model_carries_its_state_and_trains_as_keras_trains_it(optimizer):
    """train.stateful: each batch starts from the state the one before left (row r continues row r); the
    losses, the weights, the carried h and c, and the validation loss agree with Keras' stateful LSTM."""
    from lstm_textgen.model.stack import reset_streams

    config = load_config(None, ["train.stateful=true", f"train.batch_size={BATCH}", "model.units=12", "model.layers=2",
                                "model.dense_units=9", "embedding.dim=9", "model.dropout=0", "model.dense_dropout=0",
                                "model.objective=sequence", "model.tie_weights=true", f"train.optimizer={optimizer}",
                                "train.learning_rate=0.5" if optimizer == "sgd" else "train.learning_rate=0.001"])
    assert blocker(config) is None
    plain, fast = _training_pair(config)
    stream = np.random.default_rng(4).integers(1, VOCAB, (BATCH, 3 * WINDOW + 1)).astype("int32")
    windows = [(stream[:, k:k + WINDOW], stream[:, k + 1:k + WINDOW + 1]) for k in range(0, 3 * WINDOW, WINDOW)]
    for x, y in windows:
        theirs, ours = (model.train_on_batch(x, y, return_dict=True) for model in (plain, fast))
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    for a, b in zip(plain.get_weights(), fast.get_weights()):
        np.testing.assert_allclose(b, a, atol=2e-6)
    carried = [[s.numpy() for s in model.get_layer(name).states] for model in (plain, fast) for name in ("lstm_1", "lstm_2")]
    for a, b in zip(carried[:2], carried[2:]):
        np.testing.assert_allclose(b, a, atol=1e-5)
    assert np.abs(carried[2][0]).sum() > 0  # something was carried
    for model in (plain, fast):
        reset_streams(model)
    (theirs, ours) = ([model.test_on_batch(x, y) for x, y in windows[:2]] for model in (plain, fast))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    after_two = [s.numpy() for s in fast.get_layer("lstm_2").states]
    np.testing.assert_allclose(after_two, [s.numpy() for s in plain.get_layer("lstm_2").states], atol=1e-5)
    reset_streams(fast)
    fast.test_on_batch(*windows[1])  # window 2 from a zero state ends elsewhere than window 2 after window 1
    assert np.abs(after_two[0] - fast.get_layer("lstm_2").states[0].numpy()).max() > 1e-3


@pytest.mark.parametrize("objective", ["last", "sequence"])
def test_validation_loss_matches_keras(objective):
    _, plain, fast = _pair(objective)
    x, y = _batch(objective)
    theirs, ours = (model.evaluate(x, y, verbose=0, return_dict=True) for model in (plain, fast))
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-6)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"])


@pytest.mark.parametrize("objective", ["last", "sequence"])
@pytest.mark.parametrize("dropout,recurrent_dropout", [(0.3, 0.4), (0.0, 0.4), (0.3, 0.0)])
def test_dropout_masks_and_gradients_match_keras_under_the_same_masks(monkeypatch, objective, dropout,
                                                                      recurrent_dropout):
    """Fix the masks both sides draw: the unrolled LSTM and its hand-written backward pass equal Keras'
    LSTM and its autodiff gradients. With recurrent dropout Keras' cell draws four input and four
    recurrent masks (one per gate) that hold for the whole window; without it, one input mask."""
    _, plain, _ = _pair(objective, dropout=dropout, recurrent_dropout=recurrent_dropout)
    layer = plain.get_layer("lstm_1")
    cell = layer.cell
    count = 4 if recurrent_dropout else 1
    rng = np.random.default_rng(5)
    in_masks = [tf.constant(rng.integers(0, 2, (BATCH, 9)) / 0.7, tf.float32) for _ in range(count)]
    h_masks = [tf.constant(rng.integers(0, 2, (BATCH, 12)) / 0.6, tf.float32) for _ in range(4)]
    drawn = iter((in_masks if dropout else []) + (h_masks if recurrent_dropout else []))
    monkeypatch.setattr(keras.random, "dropout", lambda ones, rate, seed=None, noise_shape=None: next(drawn))
    cell.get_dropout_mask = lambda inputs: in_masks if count == 4 else in_masks[0]
    cell.get_recurrent_dropout_mask = lambda h: h_masks
    x = tf.constant(np.random.default_rng(2).normal(0, 1, (BATCH, WINDOW, 9)).astype("float32"))
    time_major = tf.transpose(x, [1, 0, 2])
    weights = [w.value for w in layer.trainable_weights]  # kernel, recurrent_kernel, bias
    probe = tf.constant(np.random.default_rng(3).normal(0, 1, (WINDOW, BATCH, 12)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, time_major])
        ours = _lstm(layer, time_major, training=True)
        theirs = layer(x, training=True)
        if objective == "sequence":  # compare in time-major order; any loss that uses every output will do
            theirs = tf.transpose(theirs, [1, 0, 2])
            ours_loss, theirs_loss = tf.reduce_sum(ours * probe), tf.reduce_sum(theirs * probe)
        else:
            ours_loss, theirs_loss = tf.reduce_sum(ours * probe[0]), tf.reduce_sum(theirs * probe[0])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)
    for a, b in zip(tape.gradient(ours_loss, [time_major, *weights]), tape.gradient(theirs_loss, [x, *weights])):
        a = tf.convert_to_tensor(a).numpy()
        b = tf.convert_to_tensor(b).numpy()
        np.testing.assert_allclose(a, b.transpose(1, 0, 2) if a.ndim == 3 else b, atol=2e-5)


def test_dropout_draws_fresh_masks_each_step_from_the_layers_seed_generators():
    _, _, fast = _pair("last", dropout=0.2, recurrent_dropout=0.2, dense_dropout=0.5)
    x = tf.constant(_batch("last")[0])
    generators = [fast.get_layer("lstm_1").cell.seed_generator, fast.get_layer("dense_dropout").seed_generator]
    before = [g.state.numpy().copy() for g in generators]
    first, second = (forward(fast, x, training=True).numpy() for _ in range(2))
    assert not np.allclose(first, second)  # different masks
    assert all((g.state.numpy() != b).any() for g, b in zip(generators, before))
    np.testing.assert_array_equal(forward(fast, x, training=False), forward(fast, x, training=False))


def test_each_layers_input_mask_is_drawn_at_its_own_rate(monkeypatch):
    """model.input_dropout is the first LSTM layer's rate, model.dropout the second's: the unrolled step draws
    each layer's input mask from that layer's seed generator at that layer's rate."""
    _, _, fast = _pair("sequence", layers=2, dropout=0.2, extra=["model.input_dropout=0.6"])
    seeds = {id(fast.get_layer(name).cell.seed_generator): name for name in ("lstm_1", "lstm_2")}
    drawn, dropout = [], keras.random.dropout
    monkeypatch.setattr(keras.random, "dropout", lambda inputs, rate, seed=None, noise_shape=None:
                        drawn.append((seeds.get(id(seed)), rate)) or dropout(inputs, rate, seed=seed))
    forward(fast, tf.constant(_batch("sequence")[0]), training=True)
    assert drawn == [("lstm_1", 0.6), ("lstm_2", 0.2)]


def test_blocker_names_what_keeps_keras_step():
    assert blocker(Config()) is None
    config = load_config(None, ["model.rnn=gru"])
    assert "LSTM" in blocker(config)
    assert "unrolled" in blocker(load_config(None, ["train.unrolled=false"]))
    assert "Masking" in blocker(load_config(None, ["embedding.path=vectors.txt"]))
    assert blocker(load_config(None, ["embedding.path=vectors.txt", "embedding.missing=random"])) is None
    assert "float32" in blocker(load_config(None, ["train.mixed_precision=true"]))
    assert blocker(load_config(None, ["train.stateful=true"])) is None
    assert blocker(load_config(None, ["model.tie_weights=true", "model.dense_units=100"])) is None
    assert "strateg" in blocker(Config(), strategy=object())
