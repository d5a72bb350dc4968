"""The check every export gets when it is written: its runtime's next-token distributions beside the numpy
stepper's (the run's generation path, itself pinned to the Keras model by tests/model/test_stepper.py), on the
run's held-out tokens, through both signatures; and, quantized, the top-1 agreement and the perplexity."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstm_textgen.errors import ExportError
from lstm_textgen.export.formats import Runner
from lstm_textgen.model.stepper import Stepper, softmax
from lstm_textgen.run.files import token_file
from lstm_textgen.run.rundir import Run

STREAM = 2000  # tokens fed one at a time through `step` (fewer when the text is shorter)
WINDOWS = 8  # windows fed through `window`
TOLERANCE = 1e-4  # float32: the largest difference of any probability
TOP1 = 0.99  # quantized: the share of positions whose likeliest token is the run's
PERPLEXITY = 0.02  # quantized: perplexity within this share of the run's


@dataclass
class Figures:
    """What the check measured, and on what."""
    text: str  # where the tokens came from
    positions: int
    step_max_diff: float
    window_max_diff: float
    top1: float  # share of step positions whose likeliest token is the run's
    perplexity: float  # of the export, over the step positions
    run_perplexity: float  # of the numpy stepper, over the same positions

    def line(self) -> str:
        change = self.perplexity / self.run_perplexity - 1
        return (f"checked on {self.positions} {self.text}: largest probability difference {self.step_max_diff:.1e} "
                f"(step), {self.window_max_diff:.1e} (window); top-1 agrees on {100 * self.top1:.1f}%; perplexity "
                f"{self.perplexity:.3f} vs the run's {self.run_perplexity:.3f} ({100 * change:+.2f}%)")

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def problem(self, quantize: str | None) -> str | None:
        """Why the export does not match the run closely enough, or None."""
        if quantize is None:
            worst = max(self.step_max_diff, self.window_max_diff)
            return (f"its probabilities differ from the run's by up to {worst:.1e}, more than {TOLERANCE:.0e}"
                    if worst > TOLERANCE else None)
        if self.top1 < TOP1:
            return f"quantized to {quantize}, its likeliest token is the run's on only {100 * self.top1:.1f}% of positions"
        change = abs(self.perplexity / self.run_perplexity - 1)
        return (f"quantized to {quantize}, its perplexity is {100 * change:.1f}% off the run's" if change > PERPLEXITY
                else None)


def held_out(run: Run, need: int) -> tuple[np.ndarray, str]:
    """Tokens to check on: the run's held-out tokens, else its training tokens (a run whose tokens/ cache was
    deleted: then text the model writes itself)."""
    for split, what in (("val", "held-out tokens"), ("train", "training tokens")):
        try:
            ids = np.load(token_file(run.run_dir, split), mmap_mode="r")
        except (OSError, ValueError):
            continue
        if ids.ndim == 1 and len(ids) > 1:
            return np.asarray(ids[:need], np.int32), what
    stepper, rng = Stepper(run.weights), np.random.default_rng(0)
    state, ids = stepper.zero_state(1), [2 % stepper.vocab_size]
    for _ in range(need - 1):
        logits, state = stepper.step(state, np.array(ids[-1:]))
        probs = softmax(logits)[0]
        probs[:2] = 0
        ids.append(int(rng.choice(len(probs), p=probs / probs.sum())))
    return np.array(ids, np.int32), "tokens the model wrote (the run has no tokens/ cache)"


def check(run: Run, runner: Runner, quantize: str | None) -> Figures:
    """Compare runner with the numpy stepper; raise ExportError when it is not close enough."""
    window = run.config.data.window_size
    ids, text = held_out(run, max(STREAM + 1, WINDOWS * window))
    stepper = Stepper(run.weights)
    step_diff, agree, nll, run_nll = _stream(stepper, runner, ids[:STREAM + 1])
    figures = Figures(text, len(ids[:STREAM + 1]) - 1, step_diff, _windows(stepper, runner, ids, window),
                      agree, math.exp(nll), math.exp(run_nll))
    problem = figures.problem(quantize)
    if problem:
        raise ExportError(f"the export does not match the run: {problem} ({figures.line()}); nothing was written"
                          + ("; try --quantize float16, or no --quantize" if quantize == "int8" else ""))
    return figures


def _stream(stepper: Stepper, runner: Runner, ids: np.ndarray) -> tuple[float, float, float, float]:
    """Feed ids one at a time to both: the largest difference, the top-1 agreement, and each one's mean negative
    log-likelihood of the token that follows."""
    state = stepper.zero_state(1)
    theirs = {name: np.zeros_like(part) for name, part in zip(_state_names(stepper), _flat(state))}
    worst = agree = nll = run_nll = 0.0
    for token, target in zip(ids[:-1], ids[1:]):
        logits, state = stepper.step(state, np.array([token]))
        mine = softmax(logits)[0]
        probs, theirs = runner.step(np.array([token], np.int32), theirs)
        probs = probs[0]
        worst = max(worst, float(np.abs(probs - mine).max()))
        agree += int(np.argmax(probs) == np.argmax(mine))
        nll -= math.log(max(float(probs[target]), 1e-30))
        run_nll -= math.log(max(float(mine[target]), 1e-30))
    n = len(ids) - 1
    return worst, agree / n, nll / n, run_nll / n


def _windows(stepper: Stepper, runner: Runner, ids: np.ndarray, window: int) -> float:
    """The largest difference over whole windows through `window` (one at a time where its batch is fixed)."""
    length = runner.window_shape[1] or window
    count = max(min(WINDOWS, len(ids) // length), 1)
    windows = np.stack([np.resize(ids[i * length:(i + 1) * length], length) for i in range(count)])
    batches = [windows[i:i + 1] for i in range(count)] if runner.window_shape[0] else [windows]
    worst = 0.0
    for batch in batches:
        probs = runner.window(batch)
        mine = softmax(stepper.logits_sequence(batch) if probs.ndim == 3 else stepper.logits_full(batch))
        worst = max(worst, float(np.abs(probs - mine).max()))
    return worst


def stepper_runner(stepper: Stepper, sequence: bool) -> Runner:
    """A numpy stepper (the web page's weights read back) as a Runner: what the page's script computes."""
    names = _state_names(stepper)

    def step(token, states):
        shaped = [[states[names[i]], states[names[i + 1]]] if layer.kind == "LSTM" else [states[names[i]]]
                  for i, layer in _starts(stepper)]
        logits, new = stepper.step(shaped, np.asarray(token))
        return softmax(logits), dict(zip(names, _flat(new)))

    def window(tokens):
        return softmax(stepper.logits_sequence(tokens) if sequence else stepper.logits_full(tokens))

    return Runner(step, window, (None, None))


def _starts(stepper: Stepper) -> list[tuple[int, object]]:
    """(index of the layer's first state name, layer) per recurrent layer."""
    out, at = [], 0
    for layer in stepper.recurrent:
        out.append((at, layer))
        at += 2 if layer.kind == "LSTM" else 1
    return out


def _state_names(stepper: Stepper) -> list[str]:
    return [f"{part}{i}" for i, layer in enumerate(stepper.recurrent)
            for part in (("h", "c") if layer.kind == "LSTM" else ("h",))]


def _flat(state: list) -> list[np.ndarray]:
    return [part for layer in state for part in layer]
