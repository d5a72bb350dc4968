"""The LSTM over a window and the softmax cross-entropy, each with its backward pass written out (TensorFlow ops).

model/step.py runs them as the CPU training step; tests/model/test_step.py pins their outputs and gradients to
TensorFlow's autodiff of the same formulas and to Keras' LSTM.
"""
from __future__ import annotations

import tensorflow as tf


def bf16_matmul(a, b, **kwargs):
    """tf.matmul of a and b rounded to bfloat16, the product back in float32 (oneDNN sums in float32)."""
    return tf.cast(tf.matmul(tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16), **kwargs), a.dtype)


def _per_gate_matmul(a, a_masks, weights, parts, matmul=tf.matmul):  # a (n, k) -> (n, 4 units)
    # gate g sees a * a_masks[g]
    if a_masks is None:
        return matmul(a, weights)
    if not isinstance(a_masks, list):
        return matmul(a * a_masks, weights)
    return tf.concat([matmul(a * m, w) for m, w in zip(a_masks, parts)], axis=1)


def _per_gate_matmul_t(dz, a_masks, weights, parts, matmul=tf.matmul):  # dz (n, 4 units) -> d a (n, k): the transpose
    if a_masks is None:
        return matmul(dz, weights, transpose_b=True)
    if not isinstance(a_masks, list):
        return matmul(dz, weights, transpose_b=True) * a_masks
    return tf.add_n([matmul(d, w, transpose_b=True) * m for d, m, w in
                     zip(tf.split(dz, 4, axis=1), a_masks, parts)])


def _weight_grad(a, a_masks, dz, matmul=tf.matmul):  # a (n, k), dz (n, 4 units) -> d weights (k, 4 units)
    if a_masks is None:
        return matmul(a, dz, transpose_a=True)
    if not isinstance(a_masks, list):
        return matmul(a * a_masks, dz, transpose_a=True)
    return tf.concat([matmul(a * m, d, transpose_a=True) for m, d in zip(a_masks, tf.split(dz, 4, axis=1))],
                     axis=1)


def _tiled(masks, steps):  # a (batch, k) mask per gate -> the same for the (time * batch, k) rows
    if masks is None:
        return None
    if isinstance(masks, list):
        return [tf.tile(m, [steps, 1]) for m in masks]
    return tf.tile(masks, [steps, 1])


def lstm_function(in_masks, h_masks, sequences: bool, bfloat16: bool = False, chains: int = 1):
    """The LSTM over a window with its backward pass written out, as cuDNN's is: one recurrent matmul (per
    mask) a step each way, and the weight gradients as single matmuls over the whole window afterwards.

    in_masks: None, one (batch, features) mask, or four (one per gate); h_masks: None or four (batch, units).
    The function returns the output and the last h and c, from a start state (h0, c0) that gets no gradient.
    bfloat16: every product takes bfloat16 operands and sums in float32; the state, the gate arithmetic and
    the weights stay float32.
    chains: the batch's rows split into that many groups, each stepped as a chain of its own (the batch must
    divide by it). The rows do not interact, so the results are the same; TensorFlow's inter-op threads then
    run the chains' small step ops side by side, where one chain would leave a core waiting on the other's op.
    On a CPU each op a step costs about its launch, whatever its size, so the steps hold only what the next
    step needs; the gates' derivatives and the backward pass's factors are computed over the whole window.
    """
    matmul = bf16_matmul if bfloat16 else tf.matmul

    def parts(tensor):  # (batch, ...) -> the chains' row groups
        return tf.split(tensor, chains) if chains > 1 else [tensor]

    chain_h_masks = [None] * chains if h_masks is None else [list(m) for m in zip(*(parts(m) for m in h_masks))]

    @tf.custom_gradient
    def run(x, kernel, recurrent, bias, h0, c0):
        steps, batch, features = x.shape[0], tf.shape(x)[1], x.shape[-1]
        units = recurrent.shape[0]
        flat = tf.reshape(x, [-1, features])  # (time * batch, features)
        x_masks = _tiled(in_masks, steps)
        scale, step_weights = _scaled(recurrent, bfloat16)
        kernels, recurrents = tf.split(kernel, 4, axis=1), tf.split(step_weights, 4, axis=1)
        projection = _per_gate_matmul(flat, x_masks, kernel, kernels, matmul)
        # index k = t * chains + p: step t of chain p, whose rows lie together in flat's order
        projected = tf.unstack(tf.reshape(tf.nn.bias_add(projection, bias) * scale, [steps * chains, -1, 4 * units]))
        h0_parts, c0_parts = parts(h0), parts(c0)  # split once: the backward pass reads them too
        h, c = list(h0_parts), list(c0_parts)
        gates, cs, tanhs, hs = [], [], [], []  # per step and chain: the sigmoids of z', c, tanh(c) and h
        for t in range(steps):
            for p in range(chains):
                s_, c[p], tanh_c, h[p] = _step(projected[t * chains + p], h[p], c[p], chain_h_masks[p], step_weights,
                                               recurrents, matmul)
                gates.append(s_), cs.append(c[p]), tanhs.append(tanh_c), hs.append(h[p])
        output = tf.reshape(tf.stack(hs), [steps, batch, units]) if sequences else _joined(h)

        def grad(upstream, _h=None, _c=None):  # the carried state's own gradient is cut (truncated BPTT)
            factors, through_h, forget = _factors(gates, tanhs, c0_parts + cs[:-chains], scale)
            last = (steps - 1) * chains
            dh_out = (tf.unstack(tf.reshape(upstream, [steps * chains, -1, units])) if sequences
                      else [None] * last + parts(upstream))
            dzs = _steps_back(dh_out, factors, through_h, forget, chain_h_masks, step_weights, recurrents, matmul,
                              steps, chains)
            dz = tf.concat(dzs, axis=0) * scale  # (time * batch, 4 units), with respect to z, rows in flat's order
            h_before = tf.concat(h0_parts + hs[:-chains], axis=0)
            dx = tf.reshape(_per_gate_matmul_t(dz, x_masks, kernel, kernels, matmul), [steps, batch, features])
            return (dx, _weight_grad(flat, x_masks, dz, matmul),
                    _weight_grad(h_before, _tiled(h_masks, steps), dz, matmul),
                    tf.reduce_sum(dz, axis=0), None, None)
        return (output, tf.stop_gradient(_joined(h)), tf.stop_gradient(_joined(c))), grad
    return run


def _scaled(recurrent, bfloat16: bool):
    """One sigmoid over all four gates: tanh(z) = 2 sigmoid(2 z) - 1 for the cell input g, so the columns of g are
    scaled by 2 going in, in the projection and in the recurrent weights (once a window). The steps work on the
    scaled z' = z * scale, whose derivative is s (1 - s) for every gate, and the derivative of g = 2 s - 1 with
    respect to s is 2 = scale. Returns the scale (4 units,), gate order i, f, g, o, and the scaled recurrent
    weights (cast to bfloat16 once a window, not every step, where asked)."""
    ones = tf.ones([recurrent.shape[0]])
    scale = tf.concat([ones, ones, 2.0 * ones, ones], 0)
    step_weights = recurrent * scale
    return scale, tf.cast(step_weights, tf.bfloat16) if bfloat16 else step_weights


def _factors(gates: list, tanhs: list, c_before: list, scale):
    """Over the whole window at once: d z' = [dc g, dc c_before, dc i, dh tanh(c)] * d gate / d z' (the factors
    of dc and dh at every step), d c / d h (from h = o tanh(c)), and the forget gates; each unstacked by step."""
    s_all, tanh_all = tf.stack(gates), tf.stack(tanhs)  # (time * chains, rows, 4 units), (..., units)
    i, f, g2, o = tf.split(s_all, 4, axis=2)
    factors = tf.unstack(tf.concat([2.0 * g2 - 1.0, tf.stack(c_before), i, tanh_all], axis=2)
                         * (s_all * (1.0 - s_all) * scale))
    return factors, tf.unstack(o * (1.0 - tanh_all * tanh_all)), tf.unstack(f)


def _step(projected, h, c, h_masks, step_weights, recurrents, matmul):
    """One step of one chain: (the sigmoids of z', the new c, tanh(c), the new h) from the step's projected
    input (scaled z' of the input) and the state before it."""
    s_ = tf.sigmoid(projected + _per_gate_matmul(h, h_masks, step_weights, recurrents, matmul))
    i, f, g2, o = tf.split(s_, 4, axis=1)
    c = f * c + i * (2.0 * g2 - 1.0)
    tanh_c = tf.tanh(c)
    return s_, c, tanh_c, o * tanh_c


def _steps_back(dh_out, factors, through_h, forget, chain_h_masks, step_weights, recurrents, matmul, steps: int,
                chains: int) -> list:
    """The gradient with respect to z' at every step and chain (index t * chains + p), last step first: dh from
    the next step's dz' through the recurrent weights (plus the output's own), dc through the forget gate."""
    last = (steps - 1) * chains
    dh = dh_out[last:]
    dc = [d * through_h[last + p] for p, d in enumerate(dh)]
    dzs = [None] * (steps * chains)  # with respect to z': the recurrent products take the scaled weights
    for t in reversed(range(steps)):
        for p in range(chains):
            k = t * chains + p
            if t < steps - 1:
                dh[p] = _per_gate_matmul_t(dzs[k + chains], chain_h_masks[p], step_weights, recurrents, matmul)
                if dh_out[k] is not None:
                    dh[p] = dh[p] + dh_out[k]
                dc[p] = dc[p] * forget[k + chains] + dh[p] * through_h[k]
            dzs[k] = tf.concat([dc[p], dc[p], dc[p], dh[p]], axis=1) * factors[k]
    return dzs


def _joined(chain_parts):  # the chains' row groups -> (batch, ...)
    return tf.concat(chain_parts, axis=0) if len(chain_parts) > 1 else chain_parts[0]


def softmax_cross_entropy(x, kernel, bias, targets, bfloat16: bool = False, rows: bool = False):
    """The next_word layer and its loss in one: (mean -log softmax(x K + b)[target], softmax probabilities).

    The (n, vocab) gradient softmax - one_hot is never built: each of its three products is the same product
    with the probabilities, less a correction the size of the targets, not of the vocabulary:
      d x = (P K^T - K^T[target]) / n,   [d K; d b] = ([x, 1]^T P - [x, 1]^T onehot) / n,
    where [x, 1]^T onehot is a segment sum of x's rows by target and the bias gradient rides on the kernel's
    product as one more row. TensorFlow's own SparseSoftmaxCrossEntropyWithLogits and a plain autodiff each
    make several more passes over the (n, vocab) array, which for a vocabulary of thousands is most of a CPU
    step. The loss is -log p[target], with p floored at float32's smallest normal number (a loss past 87 is
    capped).

    rows: the kernel comes as K^T, (vocab, dim), a row per word: the tied embedding matrix itself
    (model.tie_weights), which the products then read transposed, so that no transposed copy of it is made
    each way; its gradient comes back the same way round.
    bfloat16: the three products take bfloat16 operands (float32 sums, on CPUs with bfloat16 matrix units
    several times faster: see train.bfloat16); the softmax, the loss and the corrections stay float32.
    """
    matmul = bf16_matmul if bfloat16 else tf.matmul

    @tf.custom_gradient
    def loss_of(x, kernel, bias):
        probs = tf.nn.softmax(tf.nn.bias_add(matmul(x, kernel, transpose_b=rows), bias))  # (n, vocab)
        n, vocab = tf.shape(targets)[0], tf.shape(bias)[0]
        picked = tf.gather(probs, targets, batch_dims=1)
        scale = 1.0 / tf.cast(n, probs.dtype)
        loss = -tf.reduce_sum(tf.math.log(tf.maximum(picked, 1.1754944e-38))) * scale

        def grad(upstream):
            step = upstream * scale  # applied to the small factors, never to an (n, vocab) array
            xa = tf.concat([x, tf.ones([n, 1], x.dtype)], axis=1) * step  # (n, dim + 1): the bias is the last one
            if rows:
                dx = (matmul(probs, kernel) - tf.gather(kernel, targets)) * step
                dka = matmul(probs, xa, transpose_a=True) - tf.math.unsorted_segment_sum(xa, targets, vocab)
                return dx, dka[:, :-1], dka[:, -1]  # (vocab, dim + 1)
            dx = (matmul(probs, kernel, transpose_b=True) - tf.transpose(tf.gather(kernel, targets, axis=1))) * step
            dka = matmul(xa, probs, transpose_a=True) - tf.transpose(
                tf.math.unsorted_segment_sum(xa, targets, vocab))  # (dim + 1, vocab)
            return dx, dka[:-1], dka[-1]
        return (loss, tf.stop_gradient(probs)), lambda upstream, _: grad(upstream)
    return loss_of(x, kernel, bias)
