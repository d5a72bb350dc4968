"""inspect on real tiny runs: the recorded gates and states are the model's own (a Keras model built to expose the
same intermediates gives them, and the LSTM identities hold on every token and unit), the predictions are the
model's, --layer/--units keep columns of the same record, the features and correlations are what they say, and
the JSON lines carry it all."""
from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
from keras import ops

from lstm_textgen.generation.inspect import (FEATURES, InspectError, correlations, feature_values, find_units,
                                             inspect, json_lines, page_data)
from lstm_textgen.errors import TextgenError
from lstm_textgen.model.stepper import Stepper, softmax
from lstm_textgen.run.rundir import load_run

from conftest import TINY_TEXT, train_tiny

TEXT = 'the cat sat on the mat .\na dog ( the best ) sat by the "fire" , the end .\n' * 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A two-layer LSTM run and a GRU run, tiny and trained."""
    folder = tmp_path_factory.mktemp("inspect_runs")
    corpus = folder / "corpus.txt"
    corpus.write_text(TINY_TEXT + TEXT * 5, encoding="utf-8")
    return {"lstm": load_run(train_tiny(corpus, folder / "lstm", "model.layers=2", "train.epochs=2")),
            "gru": load_run(train_tiny(corpus, folder / "gru", "model.rnn=gru", "train.epochs=2"))}


class ExposedLSTM(keras.layers.LSTMCell):
    """Keras' LSTM cell, giving out every intermediate: input, forget, output gates, candidate, cell, hidden."""

    def __init__(self, units, **options):
        super().__init__(units, **options)
        self.output_size = 6 * units

    def call(self, inputs, states, training=False):
        h, c = states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias
        i, f, g, o = ops.split(z, 4, axis=-1)
        i, f, o, g = self.recurrent_activation(i), self.recurrent_activation(f), self.recurrent_activation(o), \
            self.activation(g)
        c = f * c + i * g
        h = o * self.activation(c)
        return ops.concatenate([i, f, o, g, c, h], axis=-1), [h, c]


class ExposedGRU(keras.layers.GRUCell):
    """Keras' GRU cell (reset_after, as Keras 3 builds it), giving out update and reset gates, candidate, hidden."""

    def __init__(self, units, **options):
        super().__init__(units, **options)
        self.output_size = 4 * units

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        x = ops.matmul(inputs, self.kernel) + self.bias[0]
        inner = ops.matmul(h, self.recurrent_kernel) + self.bias[1]
        x_z, x_r, x_h = ops.split(x, 3, axis=-1)
        r_z, r_r, r_h = ops.split(inner, 3, axis=-1)
        z, r = self.recurrent_activation(x_z + r_z), self.recurrent_activation(x_r + r_r)
        candidate = self.activation(x_h + r * r_h)
        h = z * h + (1 - z) * candidate
        return ops.concatenate([z, r, candidate, h], axis=-1), [h]


def keras_intermediates(run, ids: list[int]) -> list[dict[str, np.ndarray]]:
    """Each recurrent layer of the run's Keras model re-run by an exposing cell with its weights, over what the
    real model feeds it; each layer's hidden state checked against the real layer's own output."""
    x = np.array([ids])
    found = []
    for layer in run.model.layers:
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            lstm = isinstance(layer, keras.layers.LSTM)
            cell = (ExposedLSTM if lstm else ExposedGRU)(layer.units, activation=layer.cell.activation,
                                                       recurrent_activation=layer.cell.recurrent_activation)
            exposed = keras.layers.RNN(cell, return_sequences=True)
            exposed.build(x.shape)
            exposed.set_weights(layer.get_weights())
            out = np.asarray(exposed(x))[0]
            names = ("input_gate", "forget_gate", "output_gate", "candidate", "cell", "hidden") if lstm else \
                ("update_gate", "reset_gate", "candidate", "hidden")
            parts = dict(zip(names, np.split(out, len(names), axis=-1)))
            real = np.asarray(layer(x, training=False))[0]
            np.testing.assert_allclose(parts["hidden"], real, atol=1e-5)  # the exposing cell is the real layer
            found.append(parts)
        x = layer(x, training=False)
    return found


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_recorded_values_are_the_keras_models_own(runs, kind):
    run = runs[kind]
    reading = inspect(run, TEXT)
    expected = keras_intermediates(run, reading.ids)
    assert [layer.name for layer in reading.layers] == run.config.model.recurrent_layers()
    for layer, parts in zip(reading.layers, expected):
        assert set(layer.parts) == set(parts)
        for name, values in parts.items():
            np.testing.assert_allclose(layer.parts[name], values, atol=1e-5, err_msg=f"{layer.name} {name}")


def test_the_lstm_identities_hold_on_every_token_and_unit(runs):
    reading = inspect(runs["lstm"], TEXT * 3)
    for layer in reading.layers:
        p = layer.parts
        before = np.vstack([np.zeros((1, len(layer.units)), np.float32), p["cell"][:-1]])
        cell = p["forget_gate"] * before + p["input_gate"] * p["candidate"]  # float32, as the model computes
        assert np.abs(p["cell"] - cell).max() <= 1e-5
        assert np.abs(p["hidden"] - p["output_gate"] * np.tanh(p["cell"])).max() <= 1e-5
        for gate in ("input_gate", "forget_gate", "output_gate"):
            assert 0 <= p[gate].min() and p[gate].max() <= 1


def test_the_predictions_and_surprisal_are_the_models(runs):
    run = runs["lstm"]
    reading = inspect(run, TEXT)
    stepper = Stepper(run.weights)
    for t in (0, 5, len(reading.ids) - 2):
        _, logits = stepper.prefill([reading.ids[:t + 1]])
        probs = softmax(logits)[0]
        assert reading.top_ids[t].tolist() == np.argsort(-probs, kind="stable")[:5].tolist()
        np.testing.assert_allclose(reading.top_probs[t], np.sort(probs)[::-1][:5], rtol=1e-5)
        assert reading.surprisal[t] == pytest.approx(-math.log2(probs[reading.ids[t + 1]]), rel=1e-5)
    assert math.isnan(reading.surprisal[-1])
    assert reading.text == run.tokenizer.decode(reading.ids)


def test_layer_and_units_keep_columns_of_the_same_record(runs):
    run = runs["lstm"]
    whole, narrow = inspect(run, TEXT), inspect(run, TEXT, layers=[2], units=[5, 0, 3])
    assert [layer.name for layer in narrow.layers] == ["lstm_2"] and narrow.layers[0].units == [5, 0, 3]
    for name, values in narrow.layers[0].parts.items():
        np.testing.assert_array_equal(values, whole.layers[1].parts[name][:, [5, 0, 3]])


@pytest.mark.parametrize("layers, units, param, words", [
    ([3], None, "layer", "--layer 3 does not exist: this model has 2 recurrent layers (1 to 2)"),
    ([0], None, "layer", "--layer 0 does not exist"),
    (None, [8], "units", "--units 8 does not exist: layer 1 has 8 units (0 to 7)"),
])
def test_a_layer_or_unit_that_does_not_exist_is_named(runs, layers, units, param, words):
    with pytest.raises(InspectError, match=words.replace("(", r"\(").replace(")", r"\)")) as refused:
        inspect(runs["lstm"], TEXT, layers, units)
    assert refused.value.param == param


def test_the_json_lines_are_one_object_per_token(runs):
    reading = inspect(runs["gru"], TEXT)
    lines = [json.loads(line) for line in json_lines(reading)]
    assert len(lines) == len(reading.ids) and [line["index"] for line in lines] == list(range(len(lines)))
    first = lines[0]
    assert set(first) == {"index", "token", "surprisal_bits", "top", "layers"}
    assert set(first["layers"][0]) == {"update_gate", "reset_gate", "candidate", "hidden"}
    assert first["layers"][0]["hidden"] == pytest.approx(reading.layers[0].parts["hidden"][0].tolist(), abs=1e-6)
    assert len(first["top"]) == 5 and first["top"][0][0] == reading.vocab[reading.top_ids[0][0]]
    assert lines[-1]["surprisal_bits"] is None and "".join(line["token"] for line in lines) == reading.text


def test_the_built_in_features_mean_what_they_say(runs):
    reading = inspect(runs["lstm"], 'the ( cat ) sat\n"on" the mat')
    tokens = reading.tokens
    by_token = {name: dict(zip(range(len(tokens)), feature_values(reading, name))) for name in FEATURES}
    where = {token.strip(): t for t, token in reversed(list(enumerate(tokens)))}  # first place of each token
    assert by_token["parens"][where["cat"]] == 1 and by_token["parens"][where["sat"]] == 0
    assert by_token["quotes"][where["on"]] == 1 and by_token["quotes"][where["mat"]] == 0
    assert by_token["after_newline"][tokens.index('"')] == 1 and by_token["after_newline"][where["sat"]] == 0
    assert by_token["line_position"][where["mat"]] == len('"on" the ')
    assert by_token["word_start"][where["cat"]] == 1 and by_token["word_start"][where[")"]] == 0
    regex = feature_values(reading, "ca?t")
    assert [tokens[t].strip() for t in np.flatnonzero(regex)] == ["cat"]
    with pytest.raises(TextgenError, match="neither a built-in feature"):
        feature_values(reading, "(unclosed")


def test_find_units_ranks_by_pearsons_correlation(runs):
    reading = inspect(runs["lstm"], TEXT)
    found = find_units(reading, "line_position", top=100)
    feature = feature_values(reading, "line_position")
    for row in found:
        layer = next(layer for layer in reading.layers if layer.name == row["layer"])
        r = np.corrcoef(layer.parts["cell"][:, layer.units.index(row["unit"])], feature)[0, 1]
        assert row["correlation"] == pytest.approx(r, abs=1e-9) and row["part"] == "cell"
    assert [abs(row["correlation"]) for row in found] == sorted((abs(row["correlation"]) for row in found),
                                                                 reverse=True)
    assert correlations(np.ones((4, 2)), np.arange(4.0)) == [0.0, 0.0]  # a unit that never varies
    assert find_units(inspect(runs["gru"], TEXT), "quotes", top=1)[0]["part"] == "hidden"


def test_the_pages_data_is_every_value_to_within_its_255th(runs):
    reading = inspect(runs["lstm"], TEXT)
    data = page_data(reading, "lstm")
    import base64

    for layer, recorded in zip(data["layers"], reading.layers):
        for name, part in layer["parts"].items():
            raw = np.frombuffer(base64.b64decode(part["data"]), np.uint8).reshape(len(reading.ids), -1)
            lo, hi = np.array(part["lo"]), np.array(part["hi"])
            values = lo + raw / 255 * (hi - lo)
            assert np.abs(values - recorded.parts[name]).max() <= (hi - lo).max() / 255 * 0.51 + 1e-6
    assert data["tokens"] == reading.tokens and data["surprisal"][-1] is None
