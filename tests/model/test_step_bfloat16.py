"""train.bfloat16: the unrolled step's products in bfloat16 give float32's loss and gradients to bfloat16's
precision, validation stays float32, and the setting only applies where the CPU has bfloat16 matrix units."""
import subprocess
import sys

import numpy as np
import pytest

from lstm_textgen.config import load_config
from lstm_textgen.model import step
from lstm_textgen.model.step import _loss_and_probs, bfloat16_units, step_name, use_unrolled_step
from lstm_textgen.model.stack import Models, build_model, compile_model

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

VOCAB, WINDOW, BATCH = 300, 9, 8


def _model(*settings):
    config = load_config(None, ["model.objective=sequence", "model.layers=2", "model.units=32", "model.dense_units=24",
                                "embedding.dim=24", "model.tie_weights=true", "model.dense_activation=linear",
                                "model.dropout=0", "model.dense_dropout=0", *settings])
    keras.utils.set_random_seed(5)
    model = Models(build_model(config.model, VOCAB, config.embedding.dim), config.model, config.train).training
    compile_model(model, config.train)
    rng = np.random.default_rng(0)  # weights of a trained model's size: logits far from uniform
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _batch(seed=0):
    x = np.random.default_rng(seed).integers(1, VOCAB, size=(BATCH, WINDOW + 1)).astype("int32")
    return x[:, :-1], x[:, 1:]


def _loss_and_gradients(model, x, y, bfloat16):
    with tf.GradientTape() as tape:
        loss, _, _, _ = _loss_and_probs(model, tf.constant(x), tf.constant(y), training=True, bfloat16=bfloat16)
    return float(loss), [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_weights)]


@pytest.mark.parametrize("settings", [[], ["model.recurrent_dropout=0.2", "train.seed=1"]],
                         ids=["plain", "per-gate recurrent masks"])
def test_bfloat16_products_give_float32s_loss_and_gradients_to_bfloat16_precision(settings):
    model = _model(*settings)
    x, y = _batch()
    seeds = [v.numpy() for v in model.non_trainable_variables]  # dropout's seed states: the same masks twice
    loss32, grads32 = _loss_and_gradients(model, x, y, bfloat16=False)
    for v, value in zip(model.non_trainable_variables, seeds):
        v.assign(value)
    loss16, grads16 = _loss_and_gradients(model, x, y, bfloat16=True)
    assert loss16 != loss32  # the bfloat16 products did run
    assert loss16 == pytest.approx(loss32, rel=1e-2)
    for weight, a, b in zip(model.trainable_weights, grads32, grads16):
        cosine = float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert cosine > 0.999, weight.path
        assert np.linalg.norm(b - a) < 0.03 * np.linalg.norm(a), weight.path


def test_a_bfloat16_step_trains_and_validates_in_float32():
    plain, fast = _model(), _model()
    use_unrolled_step(fast, bfloat16=True)
    batches = [_batch(seed) for seed in range(4)]
    losses = [fast.train_on_batch(x, y, return_dict=True)["loss"] for x, y in batches * 3]
    assert losses[-1] < losses[0]
    assert all(w.dtype == "float32" for w in fast.weights)
    plain.set_weights(fast.get_weights())
    x, y = _batch(7)
    # validation (test_step) is float32: the trained weights score as Keras' own model scores them
    assert fast.test_on_batch(x, y, return_dict=True)["loss"] == pytest.approx(
        plain.test_on_batch(x, y, return_dict=True)["loss"], rel=1e-5)


@pytest.mark.parametrize("flags,expected", [("fpu sse2 avx512f amx_bf16 amx_tile", True),
                                            ("fpu sse2 avx512f avx512_bf16", True),
                                            ("fpu sse2 avx2 avx512f", False)])
def test_bfloat16_units_are_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: a CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert bfloat16_units(cpuinfo) is expected


def test_no_cpuinfo_means_no_bfloat16_units(tmp_path):
    assert bfloat16_units(tmp_path / "missing") is False


@pytest.mark.parametrize("units", [True, False])
def test_the_step_multiplies_in_bfloat16_only_where_asked_and_the_cpu_has_the_units(monkeypatch, units):
    monkeypatch.setattr(step, "bfloat16_units", lambda *_: units)
    assert step_name(load_config(None, []).train) == ("unrolled", False)
    name, bfloat16 = step_name(load_config(None, ["train.bfloat16=true"]).train)
    assert bfloat16 is units
    assert name == ("unrolled, bfloat16 products" if units else
                    "unrolled, float32 (train.bfloat16: this CPU has no bfloat16 matrix units)")


def test_train_with_bfloat16_saves_a_plain_float32_model(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "lstm_textgen", "train", str(tiny_corpus), "--run", str(run_dir),
                          "--set", "train.bfloat16=true", "--set", "train.epochs=2", "--set", "train.batch_size=8",
                          "--set", "model.units=16", "--set", "data.window_size=5", "--set", "train.sample_every=null"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"step: {step_name(load_config(None, ['train.bfloat16=true']).train)[0]}" in out.stdout + out.stderr
    model = keras.saving.load_model(run_dir / "model.keras")
    assert isinstance(model, keras.Sequential)
    assert all(w.dtype == "float32" for w in model.weights)
