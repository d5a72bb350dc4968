"""The numpy Stepper against the trained Keras model called on the whole context (DESIGN.md: within 1e-5)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from lstm_textgen.run.files import MODEL, save_model
from lstm_textgen.run.rundir import load_run
from lstm_textgen.config import GenerateConfig as Settings
from lstm_textgen.generation.sample import Generator
from lstm_textgen.model.stepper import Stepper, softmax
from lstm_textgen.text.tokenizer import PAD_ID, UNK_ID

TOLERANCE = 1e-5
WORDS = ("the cat sat on the mat and the dog ran to the log while a bird sang in the tree , "
         "then it rained . she said no ! why ? he laughed").split()
RUNS = {  # name -> --set overrides on top of the tiny model below
    "lstm_1_sequence": ["model.rnn=lstm", "model.layers=1", "model.objective=sequence"],
    "lstm_2_last": ["model.rnn=lstm", "model.layers=2", "model.objective=last"],
    "gru_1_sequence": ["model.rnn=gru", "model.layers=1", "model.objective=sequence"],
    "gru_1_last": ["model.rnn=gru", "model.layers=1", "model.objective=last"],
    "gru_2_sequence": ["model.rnn=gru", "model.layers=2", "model.objective=sequence"],
    "gru_2_last": ["model.rnn=gru", "model.layers=2", "model.objective=last"],
    "lstm_bidirectional_last": ["model.rnn=lstm", "model.bidirectional=true", "model.objective=last"],
}
ZERO_ROWS = {"lstm_1_sequence_zero_rows": "lstm_1_sequence", "gru_2_last_zero_rows": "gru_2_last"}  # copies
ZERO_WORDS = ("cat", "dog", "bird")  # rows zeroed after training: Masking(0.0) skips these steps
ALL_RUNS = [*RUNS, *ZERO_ROWS]


def train_tiny_run(run_dir, corpus, overrides):
    """A real train() run, tiny and fast: 3 steps of a large learning rate so the weights move."""
    import lstm_textgen.model.stack
    from lstm_textgen.config import load_config
    from lstm_textgen.training.train import train

    compile_model = lstm_textgen.model.stack.compile_model

    def compile_eagerly(model, config):  # tracing a tf.function costs seconds; three steps cost less eagerly
        compile_model(model, config)
        model.run_eagerly = True

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lstm_textgen.model.stack, "compile_model", compile_eagerly)
        train(load_config(None, [
            f"data.corpus={corpus}", f"train.run_dir={run_dir}", "train.epochs=1", "train.steps_per_epoch=3",
            "train.learning_rate=0.05", "model.units=8", "model.dense_units=8", "embedding.dim=8",
            "data.window_size=5", "train.batch_size=8", *overrides]))
    return run_dir


def zero_embedding_rows(trained_dir, run_dir, words):
    """A copy of a trained run whose embedding rows for words are all zeros, saved as model.keras."""
    shutil.copytree(trained_dir, run_dir)
    run = load_run(run_dir)
    layer = run.model.get_layer("embedding")
    matrix = layer.get_weights()[0]
    matrix[[run.tokenizer.index[w] for w in words]] = 0.0
    layer.set_weights([matrix])
    save_model(run.model, run_dir / MODEL)
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("stepper_runs")
    corpus = root / "corpus.txt"
    rng = np.random.default_rng(0)
    corpus.write_text(" ".join(rng.choice(WORDS, 300)) + "\n", encoding="utf-8")
    made = {name: load_run(train_tiny_run(root / name, corpus, overrides)) for name, overrides in RUNS.items()}
    for name, trained in ZERO_ROWS.items():
        made[name] = load_run(zero_embedding_rows(root / trained, root / name, ZERO_WORDS))
    return made


@pytest.fixture(scope="module")
def keras_probs(runs):
    """The Keras model called on the whole context: the next-token distribution after ids[-1]."""
    import tensorflow as tf

    calls = {}  # one graph per run for any length: eager Keras RNN calls cost ~10 ms a time step

    def probs(run, ids: list[int]) -> np.ndarray:
        if id(run) not in calls:
            calls[id(run)] = tf.function(run.model, input_signature=[tf.TensorSpec([1, None], tf.int32)])
        out = np.asarray(calls[id(run)](np.array([ids], dtype=np.int32)))
        return out[0, -1] if out.ndim == 3 else out[0]

    return probs


def context_ids(run, length=30, seed=1) -> list[int]:
    """Vocabulary ids with <unk> and, for zero-row runs, masked words at the start, middle and end."""
    rng = np.random.default_rng(seed)
    ids = [int(i) for i in rng.integers(2, run.tokenizer.vocab_size, length)]
    masked = [run.tokenizer.index[w] for w in ZERO_WORDS]
    if length < 20:
        return ids
    ids[7] = UNK_ID
    if Stepper(run.weights).masked_ids[masked].all():
        ids[0], ids[12], ids[13], ids[-1] = masked[0], masked[1], masked[2], masked[0]
    return ids


def test_zero_rows_runs_really_mask_steps(runs):
    stepper = Stepper(runs["lstm_1_sequence_zero_rows"].weights)
    assert stepper.masked_ids.sum() == len(ZERO_WORDS)
    assert not Stepper(runs["lstm_2_last"].weights).masked_ids.any()


@pytest.mark.parametrize("name", ALL_RUNS)
def test_step_probabilities_equal_keras_on_the_full_context(runs, keras_probs, name):
    run = runs[name]
    stepper = Stepper(run.weights)
    ids = context_ids(run)
    state = stepper.zero_state(1)
    worst = 0.0
    for t in range(len(ids)):
        logits, state = stepper.step(state, np.array([ids[t]]))
        worst = max(worst, float(np.abs(softmax(logits)[0] - keras_probs(run, ids[:t + 1])).max()))
    assert worst < TOLERANCE, f"{name}: largest probability difference {worst:.2e}"


@pytest.mark.parametrize("name", ["gru_2_sequence", "lstm_2_last", "lstm_1_sequence_zero_rows",
                                  "lstm_bidirectional_last"])
def test_batched_prefill_of_uneven_seeds_equals_keras(runs, keras_probs, name):
    run = runs[name]
    seeds = [context_ids(run, length, seed) for length, seed in ((14, 2), (3, 3), (9, 4), (1, 5))]
    _, logits = Stepper(run.weights).prefill(seeds)
    for row, ids in enumerate(seeds):
        np.testing.assert_allclose(softmax(logits[row:row + 1])[0], keras_probs(run, ids), atol=TOLERANCE)


@pytest.mark.parametrize("name", ["lstm_1_sequence", "gru_2_last", "gru_2_last_zero_rows",
                                  "lstm_bidirectional_last"])
def test_greedy_decode_equals_step_by_step_keras_argmax(runs, keras_probs, name):
    run = runs[name]
    seed_words = ["the", "cat", "sat", "on"]
    expected = [run.tokenizer.index[w] for w in seed_words]
    for _ in range(15):
        probs = keras_probs(run, expected).copy()
        probs[[PAD_ID, UNK_ID]] = -1.0  # never produced
        expected.append(int(np.argmax(probs)))
    sample = Generator(run.tokenizer, run.weights).sample([" ".join(seed_words)], Settings(length=15, greedy=True), [0])[0]
    assert sample.tokens == expected[len(seed_words):]


def test_bpe_run_steps_exactly_as_keras_and_repeats_its_state(tmp_path_factory, keras_probs):
    root = tmp_path_factory.mktemp("stepper_bpe")
    corpus = root / "corpus.txt"
    corpus.write_text(("naïve café 🐕 世界 , " + " ".join(WORDS) + "\n") * 20, encoding="utf-8")
    run = load_run(train_tiny_run(root / "bpe", corpus, ["data.level=bpe", "data.max_vocab=300",
                                                         "model.objective=sequence"]))
    ids = run.tokenizer.encode("the café 🐕 said 世 zyzzyva")
    assert len(ids) > 15 and min(ids) >= 2
    stepper = Stepper(run.weights)
    state, worst = stepper.zero_state(1), 0.0
    for t in range(len(ids)):
        logits, state = stepper.step(state, np.array([ids[t]]))
        worst = max(worst, float(np.abs(softmax(logits)[0] - keras_probs(run, ids[:t + 1])).max()))
    assert worst < TOLERANCE, f"largest probability difference {worst:.2e}"
    rows = stepper.repeat(state, 3)
    logits, _ = stepper.step(rows, np.array([ids[0], ids[1], ids[0]]))
    np.testing.assert_array_equal(logits[0], logits[2])
    np.testing.assert_allclose(softmax(logits[0:1])[0], keras_probs(run, ids + [ids[0]]), atol=TOLERANCE)
    np.testing.assert_allclose(softmax(logits[1:2])[0], keras_probs(run, ids + [ids[1]]), atol=TOLERANCE)


@pytest.mark.parametrize("name", ["lstm_2_last", "gru_1_sequence", "lstm_bidirectional_last"])
def test_rows_joined_and_selected_step_as_one_batch(runs, name):
    """A serving batch takes in rows prefilled apart and lets rows go; each row steps as it would in one batch."""
    run = runs[name]
    stepper = Stepper(run.weights)
    seeds = [context_ids(run, 6, seed=s) for s in (1, 2, 3)]
    together, _ = stepper.prefill(seeds)
    (first, _), (rest, _) = stepper.prefill(seeds[:1]), stepper.prefill(seeds[1:])
    joined = stepper.join_rows(first, rest)
    ids = np.array([2, 3, 4])
    expected, _ = stepper.step(together, ids)
    got, state = stepper.step(joined, ids)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    kept, _ = stepper.step(stepper.select_rows(state, [2, 0]), ids[[2, 0]])
    full, _ = stepper.step(state, ids)
    np.testing.assert_allclose(kept, full[[2, 0]], atol=1e-6)
