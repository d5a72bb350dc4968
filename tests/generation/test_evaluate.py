"""evaluate(): every token after the first predicted once, scored against the Keras model directly."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_textgen.generation.evaluate import score_ids, token_logprobs
from lstm_textgen.model.stepper import Stepper
from lstm_textgen.run.rundir import load_run
from lstm_textgen.cli import cli

from conftest import train_tiny

PTB_STYLE = ("the cat sat on the mat\n the dog sat on the log\n a cat and a <unk> sat by the fire\n\n" * 12)
HELD_OUT = " the dog sat on the mat\n a <unk> and a cat\n\n the cat sat by the log\n"


def independent_perplexity(run, ids, mode, window):
    """exp(mean -log p) from the Keras model called on each prediction's own context."""
    model, nll = run.model, []
    if mode == "stateful":  # state carried over the whole text = the whole text as one sequence
        probs = np.asarray(model(np.array([ids[:-1]]), training=False))[0]
        nll = [-math.log(probs[t - 1, ids[t]]) for t in range(1, len(ids))]
    for t in range(1, len(ids)) if mode != "stateful" else ():
        if mode == "sequence":  # consecutive windows from a fresh state
            context = ids[(t - 1) // window * window: t]
            p = np.asarray(model(np.array([context]), training=False))[0, -1]
        else:  # last: the window before the target
            p = np.asarray(model(np.array([ids[max(0, t - window): t]]), training=False))[0]
        nll.append(-math.log(p[ids[t]]))
    return math.exp(np.mean(nll)), len(nll)


@pytest.mark.parametrize("mode, extra", [("sequence", []), ("stateful", ["train.stateful=true", "train.batch_size=3"]),
                                         ("last", ["model.objective=last"])])
def test_per_token_perplexity_matches_the_keras_model(tmp_path, mode, extra):
    corpus, held_out = tmp_path / "ptb.txt", tmp_path / "held_out.txt"
    corpus.write_text(PTB_STYLE)
    held_out.write_text(HELD_OUT)
    run_dir = train_tiny(corpus, tmp_path / "run", "data.level=whitespace", "data.window_size=4", *extra)
    result = CliRunner().invoke(cli, ["evaluate", "--run", str(run_dir), str(held_out), "--json"],
                                catch_exceptions=False)
    report = json.loads(result.stdout)
    run = load_run(run_dir)
    ids = run.tokenizer.encode(HELD_OUT)
    assert report["tokens"] == len(ids) == 6 + 1 + 5 + 1 + 1 + 6 + 1  # words plus one newline token per line
    expected, count = independent_perplexity(run, ids, mode, window=4)
    assert report["targets"] == count == len(ids) - 1
    assert report["perplexity"] == pytest.approx(expected, rel=1e-4)
    assert report["oov_rate"] == pytest.approx(1 / len(ids))  # the <unk> in the text is the unknown id
    # serve's echo scores a prompt the same way with the numpy stepper alone (no Keras model)
    logprobs, top_ids, top_values = token_logprobs(run, ids, Stepper(run.weights), top=2)
    assert math.exp(-logprobs.mean()) == pytest.approx(expected, rel=1e-4) and top_ids.shape == (count, 2)
    assert np.all(top_values[:, 0] >= logprobs - 1e-9) and np.all(top_values[:, 0] >= top_values[:, 1])


def test_bits_per_character_and_the_characters_inside_unk(tmp_path, tiny_run, bpe_run):
    held_out = tmp_path / "held_out.txt"
    text = "the cat sat on the zebra mat .\nthe dog ran by the aardvark , the end .\n"
    held_out.write_text(text)
    for run_dir, unknown in ((tiny_run, len("zebra") + len("ran") + len("aardvark") + len("end")), (bpe_run, 0)):
        result = CliRunner().invoke(cli, ["evaluate", "--run", str(run_dir), str(held_out), "--json"],
                                    catch_exceptions=False)
        report = json.loads(result.stdout)
        assert report["characters"] == len(text)
        bits = math.log(report["perplexity"]) * report["targets"] / math.log(2)  # the total cross-entropy
        assert report["bits_per_char"] == pytest.approx(bits / len(text), rel=1e-9)
        assert report["unk_char_share"] == pytest.approx(unknown / len(text))
        printed = CliRunner().invoke(cli, ["evaluate", "--run", str(run_dir), str(held_out)]).stdout
        assert f"bits per character  {report['bits_per_char']:.4f}  (over {len(text)} characters, " in printed


def test_metrics_json_turns_the_best_val_loss_into_bits_per_character(tiny_run, bpe_run):
    for run_dir in (tiny_run, bpe_run):
        run = load_run(run_dir)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        val = np.load(run_dir / "tokens" / "val.npy")
        if run.tokenizer.level == "bpe":  # the validation text, exactly
            assert metrics["val_chars"] == len(run.tokenizer.decode(val))
        else:  # 30 repeats of two lines: the last 10% of the tokens are the last 3 repeats, as read
            text = (run_dir.parent / "corpus.txt").read_text()
            assert len(val) == metrics["val_tokens"] and metrics["val_chars"] == len(text) // 10
        assert metrics["best_val_bits_per_char"] == pytest.approx(
            metrics["best_val_loss"] / math.log(2) * metrics["val_tokens"] / metrics["val_chars"])


def test_a_stateful_runs_validation_figure_is_its_model_over_batch_size_carried_streams(tmp_path):
    """The epoch-1 figure of a stateful run measures what it says: the validation split cut into batch_size
    equal streams (as training cuts its text), each read from a zero state with the state carried from window
    to window; the Keras model run over each whole stream gives the same loss. The per-token figure
    (score_ids, evaluate's) reads the split as one stream instead: the two differ by the streams' cold starts."""
    corpus = tmp_path / "ptb.txt"
    corpus.write_text(PTB_STYLE * 3)
    batch, window = 3, 4
    run_dir = train_tiny(corpus, tmp_path / "run", "data.level=whitespace", f"data.window_size={window}",
                         "train.stateful=true", f"train.batch_size={batch}", "train.epochs=1")
    run = load_run(run_dir)
    val = np.load(run_dir / "tokens" / "val.npy")
    length = len(val) // batch
    steps = (length - 1) // window  # whole windows (and their targets) per stream
    streams = val[: length * batch].reshape(batch, length)[:, : steps * window + 1]
    probs = np.asarray(run.model(streams[:, :-1], training=False))  # each stream whole: its state carried
    nll = -np.log(np.take_along_axis(probs, streams[:, 1:, None], axis=-1))
    history = json.loads((run_dir / "metrics.json").read_text())
    assert history["best_val_loss"] == pytest.approx(float(nll.mean()), rel=1e-4)
    one_stream = np.asarray(run.model(val[None, :-1], training=False))[0]
    expected = math.exp(-np.mean(np.log(one_stream[np.arange(len(val) - 1), val[1:]])))
    assert score_ids(run, val)["perplexity"] == pytest.approx(expected, rel=1e-4)  # the quality benchmark's column
