"""The LSTM over a window and the fused softmax cross-entropy, each with its backward pass written out, pinned
to TensorFlow's own autodiff of the same formulas."""
import numpy as np
import pytest
import tensorflow as tf

from lstm_textgen.model.lstm import lstm_function, softmax_cross_entropy

VOCAB = 12


def reference_lstm(x, kernel, recurrent, bias, h, c, in_mask=None, h_masks=None):
    """Keras' LSTM cell written plainly (gate order i, f, g, o), for autodiff to differentiate."""
    outputs = []
    for t in range(x.shape[0]):
        in_masks = in_mask if isinstance(in_mask, list) else [1.0 if in_mask is None else in_mask] * 4
        hs = [h] * 4 if h_masks is None else [h * m for m in h_masks]
        z = (tf.concat([tf.matmul(x[t] * m, k) for m, k in zip(in_masks, tf.split(kernel, 4, 1))], 1)
             + tf.concat([tf.matmul(hg, r) for hg, r in zip(hs, tf.split(recurrent, 4, 1))], 1))
        i, f, g, o = tf.split(z + bias, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        outputs.append(h)
    return tf.stack(outputs), h, c


@pytest.mark.parametrize("sequences, masks, chains", [(True, None, 1), (False, None, 1), (True, "input", 1),
                                                      (True, "recurrent", 1), (True, "recurrent", 2),
                                                      (False, "recurrent", 2), (True, None, 4), (False, "gates", 1),
                                                      (True, "gates", 2)])
def test_the_lstm_and_its_gradients_match_autodiff(sequences, masks, chains):
    """chains: the batch's rows stepped as that many independent chains give the same results."""
    rng = np.random.default_rng(3)
    steps, batch, features, units = 6, 4, 5, 3
    x, h0, c0 = (tf.constant(rng.normal(0, 1, shape).astype("float32"))
                 for shape in ((steps, batch, features), (batch, units), (batch, units)))
    kernel, recurrent = (tf.constant(rng.normal(0, 0.5, shape).astype("float32"))
                         for shape in ((features, 4 * units), (units, 4 * units)))
    bias = tf.constant(rng.normal(0, 0.5, 4 * units).astype("float32"))

    def drawn(size):
        return tf.constant((rng.random((batch, size)) > 0.3).astype("float32") / 0.7)
    # "gates": four input and four recurrent masks, one per gate, as Keras' cell draws them with recurrent dropout
    in_mask = drawn(features) if masks == "input" else [drawn(features) for _ in range(4)] if masks == "gates" else None
    h_masks = [drawn(units) for _ in range(4)] if masks in ("recurrent", "gates") else None
    weights = [x, kernel, recurrent, bias]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(weights)
        ours, h, c = lstm_function(in_mask, h_masks, sequences, chains=chains)(x, kernel, recurrent, bias, h0, c0)
        all_h, ref_h, ref_c = reference_lstm(x, kernel, recurrent, bias, h0, c0, in_mask, h_masks)
        theirs = all_h if sequences else ref_h
        probe = tf.constant(rng.normal(0, 1, theirs.shape).astype("float32"))  # a loss that weighs every output
        loss_ours, loss_theirs = tf.reduce_sum(ours * probe), tf.reduce_sum(theirs * probe)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)
    np.testing.assert_allclose(h.numpy(), ref_h.numpy(), atol=1e-5)
    np.testing.assert_allclose(c.numpy(), ref_c.numpy(), atol=1e-5)
    for a, b in zip(tape.gradient(loss_ours, weights), tape.gradient(loss_theirs, weights)):
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(), atol=1e-4)


@pytest.mark.parametrize("rows", [False, True])
def test_softmax_cross_entropy_and_its_gradients_match_tensorflow(rows):
    """rows: the kernel handed over as (vocab, dim), as the tied embedding is; its gradient comes back so."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(0, 1, (40, 16)).astype("float32"))
    kernel = tf.constant(rng.normal(0, 2, (16, VOCAB)).astype("float32"))
    bias = tf.constant(rng.normal(0, 1, VOCAB).astype("float32"))
    targets = tf.constant(rng.integers(0, VOCAB, 40).astype("int32"))
    given = tf.transpose(kernel) if rows else kernel
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, given, bias])
        ours, probs = softmax_cross_entropy(x, given, bias, targets, rows=rows)
        logits = x @ (tf.transpose(given) if rows else given) + bias
        theirs = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    np.testing.assert_allclose(probs.numpy(), tf.nn.softmax(logits).numpy(), atol=1e-7)
    for a, b in zip(tape.gradient(ours, [x, given, bias]), tape.gradient(theirs, [x, given, bias])):
        assert a.shape == b.shape
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
