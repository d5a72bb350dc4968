"""The CPU training step: the Keras stack's own function and weights, run as one unrolled graph.

Keras' LSTM steps a while loop that slices the kernels, selects masked states and writes a TensorArray at
every time step, and Adam spends a dozen element-wise passes on each weight. On a CPU, with short windows,
that bookkeeping costs more than the arithmetic. Here the input projection of the whole window is one
matmul, the window is unrolled, no mask is computed (no step can be masked: see unrolled_blocker), the loss
is one fused softmax cross-entropy on the logits, and each Adam update is TensorFlow's one-pass kernel.
The model, its layers, variables and dropout seed generators stay the Keras ones: only the model's
train_step/test_step and the optimizer's update_step are replaced, so model.keras is still the plain
keras.Sequential of DESIGN.md. tests/model/test_step.py pins losses, gradients and updates to Keras'.
"""
from __future__ import annotations

import functools
import types
from dataclasses import dataclass

from lstm_textgen.config import EmbeddingConfig, ModelConfig, TrainConfig
from lstm_textgen.model.lstm import bf16_matmul, lstm_function, softmax_cross_entropy


def unrolled_blocker(model: ModelConfig, embedding: EmbeddingConfig, train: TrainConfig,
                     strategy=None) -> str | None:
    """Why the unrolled step cannot train this run (Keras' own step does), or None when it can."""
    import keras
    import tensorflow as tf

    if not train.unrolled:
        return "train.unrolled is false"
    if model.rnn != "lstm" or model.bidirectional:
        return "it covers one-directional LSTM stacks"
    if embedding.path and embedding.missing == "zeros":
        return "zero embedding rows make the Masking layer skip steps mid-window"
    if train.mixed_precision or keras.mixed_precision.global_policy().name != "float32":
        return "it runs in float32"
    if strategy is not None:
        return "tf.distribute strategies use Keras' step"
    if tf.config.list_logical_devices("GPU"):
        return "on a GPU Keras' fused cuDNN kernel is faster"
    return None


def bfloat16_units(cpuinfo="/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX-BF16 or AVX512-BF16, from
    /proc/cpuinfo's flags): elsewhere TensorFlow converts each operand and bfloat16 is slower than float32."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def step_name(train: TrainConfig) -> tuple[str, bool]:
    """The unrolled step's name for the start line, and whether it multiplies in bfloat16 (train.bfloat16)."""
    if not train.bfloat16:
        return "unrolled", False
    if bfloat16_units():
        return "unrolled, bfloat16 products", True
    return "unrolled, float32 (train.bfloat16: this CPU has no bfloat16 matrix units)", False


@dataclass(frozen=True)
class Regularization:
    """What the training step adds to the Keras stack's own dropouts (AWD-LSTM's; training only, so validation
    and the saved model.keras are the plain stack): weight_drop, the share of each LSTM's recurrent kernel
    dropped (model.weight_drop); embedding_dropout, the share of the vocabulary's embedding rows dropped
    (model.embedding_dropout); activation and temporal, the weights of the AR and TAR penalties
    (model.activation_reg, model.temporal_reg)."""
    weight_drop: float = 0.0
    embedding_dropout: float = 0.0
    activation: float = 0.0
    temporal: float = 0.0

    @classmethod
    def of(cls, model: ModelConfig) -> "Regularization":
        return cls(model.weight_drop, model.embedding_dropout, model.activation_reg, model.temporal_reg)


NONE = Regularization()


def use_unrolled_step(model, bfloat16: bool = False, regularization: Regularization = NONE) -> None:
    """Replace model.train_step/test_step and its optimizer's Adam update with the unrolled versions.

    The model must be compiled (Adam or SGD, sparse categorical cross-entropy, accuracy) and built by
    build_model; SGD keeps Keras' update (one multiply and one subtraction). bfloat16: the training step's
    products take bfloat16 operands (validation stays float32). regularization: what the training step adds.
    """
    model.train_step = types.MethodType(functools.partial(_train_step, bfloat16=bfloat16,
                                                          regularization=regularization), model)
    model.test_step = types.MethodType(_test_step, model)
    import keras

    if isinstance(model.optimizer, keras.optimizers.Adam) and not model.optimizer.amsgrad:
        model.optimizer.update_step = types.MethodType(_fused_adam_update, model.optimizer)


# --- the forward pass ---------------------------------------------------------------------------

def features(model, ids, training: bool, bfloat16: bool = False, regularization: Regularization = NONE):
    """(batch, time) ids -> the input of the softmax layer: (time * batch, dense_units) time-major for
    `sequence` (row t * batch + b is window b at step t), (batch, dense_units) for `last`."""
    return head_input(model, recurrent_output(model, ids, training, bfloat16, regularization), training, bfloat16)


def recurrent_output(model, ids, training: bool, bfloat16: bool = False, regularization: Regularization = NONE):
    """(batch, time) ids -> the last LSTM layer's output: (time, batch, units), or (batch, units) for `last`.

    regularization.embedding_dropout (in training): one draw a batch drops that share of the vocabulary's
    embedding rows, the rest scaled up, so a dropped word is all zeros wherever it occurs in the batch
    (AWD-LSTM's embedding dropout). The tied softmax keeps every row. The draw uses the first LSTM cell's seed
    generator: the Embedding layer has none, and the cell's is saved for exact resume.
    """
    import keras
    import tensorflow as tf

    embedding = model.get_layer("embedding")
    time_major = tf.transpose(ids)
    x = tf.gather(embedding.embeddings.value, time_major)  # (time, batch, dim)
    recurrent = [layer for layer in model.layers if layer.name.startswith("lstm_")]
    if training and regularization.embedding_dropout > 0:
        rows = keras.random.dropout(tf.ones([embedding.input_dim, 1]), regularization.embedding_dropout,
                                    seed=recurrent[0].cell.seed_generator)
        x = x * tf.gather(rows, time_major)
    for layer in recurrent:
        x = _lstm(layer, x, training, bfloat16, regularization.weight_drop)
    return x


def head_input(model, h, training: bool, bfloat16: bool = False):
    """The last LSTM layer's output -> the Dense layer and its dropout: the softmax layer's input, its rows
    time-major."""
    import keras
    import tensorflow as tf

    x = tf.reshape(h, [-1, h.shape[-1]])
    dense, dropout = model.get_layer("dense"), model.get_layer("dense_dropout")
    matmul = bf16_matmul if bfloat16 else tf.matmul  # its gradients, through the casts, are bfloat16 products too
    x = dense.activation(tf.nn.bias_add(matmul(x, dense.kernel.value), dense.bias.value))
    if training and dropout.rate > 0:
        x = keras.random.dropout(x, dropout.rate, seed=dropout.seed_generator)
    return x


def penalties(h, inputs, regularization: Regularization):
    """AWD-LSTM's activation penalties (Merity et al. 2017), added to the training loss only: AR, the mean
    square of the softmax layer's (dropped) input, times regularization.activation; TAR, the mean square of
    the last LSTM's step-to-step change within the window, times regularization.temporal (h: its output,
    (time, batch, units), objective `sequence`)."""
    import tensorflow as tf

    total = tf.constant(0.0)
    if regularization.activation > 0:
        total += regularization.activation * tf.reduce_mean(tf.square(inputs))
    if regularization.temporal > 0:
        total += regularization.temporal * tf.reduce_mean(tf.square(h[1:] - h[:-1]))
    return total


def head_weights(model):
    """The next_word layer's (kernel, bias, rows): the kernel is (dim, vocab), or with model.tie_weights the
    embedding matrix itself, (vocab, dim), a row per word (rows true: model.TiedSoftmax uses it transposed),
    so that its gradient reaches the embedding with no transposed copy made."""
    head = model.get_layer("next_word")
    if hasattr(head, "kernel"):
        return head.kernel.value, head.bias.value, False
    return model.get_layer("embedding").embeddings.value, head.bias.value, True


def _lstm(layer, x, training: bool, bfloat16: bool = False, weight_drop: float = 0.0):
    """keras.layers.LSTM on time-major x (time, batch, features) -> every step's h, (time, batch, units),
    or the last step's, (batch, units), for a layer that does not return sequences.

    Keras' cell, implementation 2 (no recurrent dropout): one input dropout mask, z = x K + h U + b.
    Implementation 1 (recurrent_dropout > 0): four input and four recurrent masks, one per gate, as
    keras.layers.LSTMCell draws them; each mask holds for the whole window.
    weight_drop (model.weight_drop, in training): DropConnect, one dropout mask on the recurrent kernel's
    weights for the whole batch, as AWD-LSTM draws it; the gradient reaches the kept weights only.
    A stateful layer (train.stateful) starts from its state variables and leaves its last h and c in them,
    as Keras' RNN.call does; no gradient flows back into the carried state (truncated BPTT).
    """
    import keras
    import tensorflow as tf

    cell = layer.cell
    batch, features = tf.shape(x)[1], x.shape[-1]

    def masks(size, rate, count):
        ones = tf.ones([batch, size])
        drawn = [keras.random.dropout(ones, rate, seed=cell.seed_generator) for _ in range(count)]
        return drawn if count > 1 else drawn[0]
    per_gate = cell.implementation == 1
    in_masks = masks(features, cell.dropout, 4 if per_gate else 1) if training and cell.dropout > 0 else None
    h_masks = masks(cell.units, cell.recurrent_dropout, 4) if training and per_gate else None
    run = lstm_function(in_masks, h_masks, layer.return_sequences, bfloat16, _chains(x.shape[1]))
    if layer.stateful:
        h0, c0 = (state.value for state in layer.states)
    else:
        h0 = c0 = tf.zeros([batch, cell.units])
    recurrent = cell.recurrent_kernel.value
    if training and weight_drop > 0:
        recurrent = keras.random.dropout(recurrent, weight_drop, seed=cell.seed_generator)
    output, h, c = run(x, cell.kernel.value, recurrent, cell.bias.value, h0, c0)
    if layer.stateful:
        for state, value in zip(layer.states, (h, c)):
            state.assign(value)
    return output


def _chains(batch: int | None) -> int:
    """How many independent chains of steps the batch's rows are split into (fast.lstm.lstm_function): two
    where the process may run on more than one core and the batch's size is known and even, else one. Two
    chains trained the reference model 4% faster (7% without recurrent dropout) on two cores (docs/quality-history.md)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 2 if cores > 1 and batch is not None and batch % 2 == 0 else 1


# --- the Keras hooks ----------------------------------------------------------------------------

def _loss_and_probs(model, x, y, training: bool, bfloat16: bool = False, regularization: Regularization = NONE):
    """The mean loss, the softmax (targets, vocab) with its targets in the same (time-major) order, and in
    training the activation penalties the step adds to the loss (penalties; 0 at validation)."""
    import tensorflow as tf

    targets = tf.cast(tf.reshape(tf.transpose(y) if y.shape.rank == 2 else y, [-1]), tf.int32)
    h = recurrent_output(model, x, training, bfloat16, regularization)
    inputs = head_input(model, h, training, bfloat16)
    kernel, bias, rows = head_weights(model)
    loss, probs = softmax_cross_entropy(inputs, kernel, bias, targets, bfloat16, rows)
    return loss, probs, targets, penalties(h, inputs, regularization) if training else tf.constant(0.0)


def _train_step(self, data, bfloat16: bool = False, regularization: Regularization = NONE):
    """Keras' TensorFlow train_step with the unrolled forward pass (keras/src/backend/tensorflow/trainer.py).
    The loss it reports is the cross-entropy alone, without the penalties it descends."""
    import tensorflow as tf

    x, y = data[0], data[1]
    with tf.GradientTape() as tape:
        loss, probs, targets, penalty = _loss_and_probs(self, x, y, training=True, bfloat16=bfloat16,
                                                        regularization=regularization)
        total = loss + penalty
    weights = self.trainable_weights
    gradients = tape.gradient(total, weights)
    self.optimizer.apply_gradients(zip(gradients, weights))
    return _update_metrics(self, loss, probs, targets, tf.shape(x)[0])


def _test_step(self, data):
    import tensorflow as tf

    x, y = data[0], data[1]
    loss, probs, targets, _ = _loss_and_probs(self, x, y, training=False)
    return _update_metrics(self, loss, probs, targets, tf.shape(x)[0])


def _update_metrics(self, loss, probs, targets, batch):
    """The loss tracker weighted by windows, as Keras does, and the compiled metrics (accuracy): a mean
    over targets, which comes out the same in time-major order.

    Softmax outputs are >= 0, and the float32 bit patterns of non-negative numbers order as int32s do:
    handed the int32 view, Keras' argmax takes its plain path and skips the five passes over the
    (targets, vocab) array that it makes for floats to handle -0.0.
    """
    import tensorflow as tf

    self._loss_tracker.update_state(loss, sample_weight=batch)
    return self.compute_metrics(None, targets, tf.bitcast(probs, tf.int32))


def _fused_adam_update(self, gradient, variable, learning_rate):
    """keras.optimizers.Adam.update_step in one ResourceApplyAdam kernel: the same m, v and step formulas
    (alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t), epsilon outside the square root).

    The embedding's sparse gradient is summed per row first, as Adam is defined (and tf.keras 2 and PyTorch
    do); Keras 3 squares each occurrence of a row before summing (ops.square on IndexedSlices), which gives
    a token seen k times in a batch a smaller step than Adam's.
    """
    import tensorflow as tf

    dtype = variable.dtype
    step = tf.cast(self.iterations + 1, dtype)
    index = self._get_variable_index(variable)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
        beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step), beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
        lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype), beta2=tf.cast(self.beta_2, dtype),
        epsilon=tf.cast(self.epsilon, dtype), grad=tf.convert_to_tensor(gradient), use_locking=False)
