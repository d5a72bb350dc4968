"""The check at export time: the numpy stepper against an export's runtime, what it measures and what it refuses."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from lstm_textgen.errors import ExportError
from lstm_textgen.export.check import check, held_out, stepper_runner
from lstm_textgen.export.formats import Runner
from lstm_textgen.model.stepper import Stepper
from lstm_textgen.run.rundir import load_run


@pytest.mark.parametrize("which", ["tiny_run", "gru_run"])
def test_the_runs_own_stepper_passes_exactly(which, request):
    run = load_run(request.getfixturevalue(which))
    figures = check(run, stepper_runner(Stepper(run.weights), run.config.model.objective == "sequence"), None)
    assert figures.step_max_diff == 0 and figures.window_max_diff == 0 and figures.top1 == 1.0
    assert figures.perplexity == figures.run_perplexity > 1
    assert figures.text == "held-out tokens" and figures.positions > 50
    assert "top-1 agrees on 100.0%" in figures.line()


def _skewed(runner: Runner, noise: float, flip: bool = False, power: float = 1.0) -> Runner:
    """runner with its probabilities moved by noise, or raised to a power (the order kept), or (flip) with its two
    likeliest tokens swapped."""
    def move(probs):
        probs = probs ** power
        probs = probs / probs.sum(axis=-1, keepdims=True) + noise * np.sin(np.arange(probs.shape[-1]))
        if flip:
            order = np.argsort(-probs, axis=-1)
            first, second = order[..., :1], order[..., 1:2]
            a, b = np.take_along_axis(probs, first, -1), np.take_along_axis(probs, second, -1)
            np.put_along_axis(probs, first, b, -1)
            np.put_along_axis(probs, second, a, -1)
        return probs

    def step(token, states):
        probs, states = runner.step(token, states)
        return move(probs), states

    return Runner(step, lambda tokens: move(runner.window(tokens)), runner.window_shape)


def test_float32_refuses_a_difference_above_1e_4(tiny_run):
    run = load_run(tiny_run)
    exact = stepper_runner(Stepper(run.weights), True)
    assert check(run, _skewed(exact, 5e-5), None).step_max_diff == pytest.approx(5e-5, rel=0.01)
    with pytest.raises(ExportError, match=r"differ from the run's by up to 5\.0e-04, more than 1e-04.*nothing was "
                                          r"written"):
        check(run, _skewed(exact, 5e-4), None)


def test_quantized_refuses_a_top1_below_99_percent(tiny_run):
    run = load_run(tiny_run)
    exact = stepper_runner(Stepper(run.weights), True)
    sharper = check(run, _skewed(exact, 0.0, power=1.3), "int8")  # quantized: differences above 1e-4 are expected
    assert sharper.top1 == 1.0 and sharper.step_max_diff > 1e-4
    with pytest.raises(ExportError, match=r"quantized to int8, its perplexity is \d+\.\d% off the run's"):
        check(run, _skewed(exact, 0.0, power=30.0), "int8")
    with pytest.raises(ExportError, match=r"quantized to int8, its likeliest token is the run's on only 0\.0% .*try "
                                          r"--quantize float16"):
        check(run, _skewed(exact, 0.0, flip=True), "int8")


def test_held_out_falls_back_to_training_tokens_then_to_the_models_own_text(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    val = np.load(run_dir / "tokens" / "val.npy")
    ids, what = held_out(load_run(run_dir), 50)
    assert what == "held-out tokens" and list(ids) == list(val[:50])
    (run_dir / "tokens" / "val.npy").unlink()
    ids, what = held_out(load_run(run_dir), 50)
    assert what == "training tokens" and list(ids) == list(np.load(run_dir / "tokens" / "train.npy")[:50])
    shutil.rmtree(run_dir / "tokens")
    ids, what = held_out(load_run(run_dir), 50)
    assert what.startswith("tokens the model wrote") and len(ids) == 50 and ids[1:].min() >= 2
