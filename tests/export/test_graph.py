"""The step and window functions over real Keras models, against the numpy stepper and the model itself."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import TINY_TEXT, train_tiny
from lstm_textgen.errors import ExportError
from lstm_textgen.export.graph import float32_model, signatures
from lstm_textgen.model.stepper import Stepper, softmax
from lstm_textgen.run.rundir import load_run

IDS = [2, 5, 3, 7, 4, 2, 9, 6]


def _stream(sigs, names, ids):
    state = {name: np.zeros((1, units), np.float32) for name, units in names}
    out = []
    for token in ids:
        result = sigs.step(np.array([token], np.int32), *state.values())
        state = {name: result[f"{name}_next"].numpy() for name, _ in names}
        out.append(result["probabilities"].numpy()[0])
    return np.array(out)


@pytest.mark.parametrize("which", ["tiny_run", "gru_run"])
def test_step_carries_the_state_as_the_numpy_stepper_does(which, request):
    run = load_run(request.getfixturevalue(which))
    sigs = signatures(run.model)
    stepper, mine = Stepper(run.weights), []
    state = stepper.zero_state(1)
    for token in IDS:
        logits, state = stepper.step(state, np.array([token]))
        mine.append(softmax(logits)[0])
    np.testing.assert_allclose(_stream(sigs, sigs.states, IDS), np.array(mine), atol=1e-6)
    kinds = [name[0] for name, _ in sigs.states]
    assert kinds == (["h", "c"] if which == "tiny_run" else ["h", "h"])


@pytest.mark.parametrize("which", ["tiny_run", "gru_run"])
def test_window_is_the_saved_model(which, request):
    run = load_run(request.getfixturevalue(which))
    sigs = signatures(run.model)
    windows = np.array([IDS[:5], IDS[3:]], np.int32)
    theirs = sigs.window(windows)["probabilities"].numpy()
    np.testing.assert_allclose(theirs, run.model(windows, training=False).numpy(), atol=1e-6)
    assert sigs.sequence == (which == "tiny_run") and theirs.ndim == (3 if sigs.sequence else 2)
    tensors = sigs.tensors()
    assert [t["name"] for t in tensors["step"]["outputs"]] == ["probabilities", *(f"{n}_next" for n, _ in sigs.states)]
    assert tensors["window"]["outputs"][0]["shape"][-1] == run.tokenizer.vocab_size


def test_a_token_with_a_zero_embedding_row_keeps_the_state(tiny_run):
    model = keras.models.clone_model(load_run(tiny_run).model)
    model.set_weights(load_run(tiny_run).model.get_weights())
    table = model.get_layer("embedding").embeddings.numpy()
    table[4] = 0.0  # a pretrained word missing from the vectors (embedding.missing: zeros)
    model.get_layer("embedding").embeddings.assign(table)
    sigs = signatures(model)
    start = {name: np.full((1, units), 0.3, np.float32) for name, units in sigs.states}
    kept = sigs.step(np.array([4], np.int32), *start.values())
    moved = sigs.step(np.array([5], np.int32), *start.values())
    for name, _ in sigs.states:
        np.testing.assert_array_equal(kept[f"{name}_next"].numpy(), start[name])
        assert not np.allclose(moved[f"{name}_next"].numpy(), start[name])


def test_a_bidirectional_model_is_refused(bidirectional_run):
    run = load_run(bidirectional_run)
    with pytest.raises(ExportError, match="bidirectional.*model.bidirectional"):
        signatures(run.model)


def test_a_mixed_precision_run_is_exported_in_float32(tmp_path, tiny_run):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    run = load_run(train_tiny(corpus, tmp_path / "mixed", "train.mixed_precision=true"))
    assert any(layer.dtype_policy.compute_dtype == "float16" for layer in run.model.layers)
    plain = float32_model(run.model)
    assert all(layer.dtype_policy.compute_dtype == "float32" for layer in plain.layers)
    for a, b in zip(plain.get_weights(), run.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    ids = np.array([[2, 3, 4, 5]], np.int32)
    np.testing.assert_allclose(signatures(plain).window(ids)["probabilities"].numpy(),
                               softmax(Stepper(run.weights).logits_sequence(ids)), atol=1e-5)
    tiny = load_run(tiny_run)
    assert float32_model(tiny.model) is tiny.model
