"""evaluate(): per-token perplexity, top-1/top-5 accuracy, OOV rate, a unigram baseline and bits per character
on held-out text.

Every token after the first is predicted exactly once (newline tokens too), as published word-level
perplexities count them. The context of each prediction is what the model trained with: a stateful run
carries its state across the whole text (as the PyTorch word language model evaluates); a `sequence`
run reads the text in consecutive windows from a fresh state, the last one partial; a `last` run sees
the window_size tokens before each target (fewer at the start of the text).

Bits per character put every level on one scale: the cross-entropy of all those predictions, in bits, over
the number of characters of the text scored (the files as read: line ends normalised, before any
lower-casing; the first token's characters count too, though it is not predicted). At word level an
<unk> costs one prediction however long the word it hides, which flatters the figure, so the share of
those characters inside <unk> tokens is reported beside it (0 at the bpe level).
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from lstm_textgen.run.files import check_no_runs_read
from lstm_textgen.run.rundir import Run
from lstm_textgen.text.corpus import find_files, read_text
from lstm_textgen.errors import CorpusError
from lstm_textgen.text.tokenizer import PAD_ID, UNK_ID
from lstm_textgen.usertext import text_problem

WHAT = "evaluation text"  # how errors name the files evaluate reads

BATCH = 64  # windows per model call (each a window of targets for `sequence`)
LAST_BATCH = 512  # windows per model call for `last`: one target each
STREAM_CHUNK = 512  # tokens whose output layer is applied at once on a carried stream


def evaluate(run: Run, corpus: list[str]) -> dict:
    """Score the run's model on every token of corpus after the first (the files are read as one text)."""
    for spec in corpus:
        check_no_runs_read(spec, WHAT)
    files = [path for spec in corpus for path in find_files(spec, WHAT)]
    parts, chars, unknown_chars = [], 0, 0
    for path in files:
        text = read_text(path, WHAT)
        problem = text_problem(text)
        if problem is not None:
            raise CorpusError(f"{WHAT} file {path} holds {problem}; give plain UTF-8 text")
        parts.append(run.tokenizer.encode_array(text))
        chars, unknown_chars = chars + len(text), unknown_chars + run.tokenizer.unknown_chars(text)
        del text
    ids = np.concatenate(parts)
    data = run.config.data
    if len(ids) < data.window_size + 1:
        raise CorpusError(f"{', '.join(map(str, files))} has {len(ids)} tokens, fewer than one window of "
                          f"{data.window_size + 1}; evaluate on a longer text")
    if np.all(ids == UNK_ID):
        raise CorpusError(f"no {run.tokenizer.unit} of {', '.join(map(str, files))} is in the run's "
                          "vocabulary, so every prediction would be of <unk>; evaluate on text like the training text")

    return {"files": [str(p) for p in files], **score_ids(run, ids, chars), "unk_char_share": unknown_chars / chars}


def score_ids(run: Run, ids: np.ndarray, chars: int | None = None) -> dict:
    """The figures of evaluate() for token ids already encoded (e.g. a run's tokens/val.npy); bits per
    character when the number of characters they were made from is given."""
    ids = np.asarray(ids, dtype=np.int32)
    unigram = unigram_log_probs(run.tokenizer.counts)
    n = nll = unigram_nll = top1 = top5 = 0.0
    for probs, targets in predictions(run, ids):  # (m, vocab) next-token probabilities, (m,) ids
        picked = probs[np.arange(len(targets)), targets]
        nll -= np.log(np.maximum(picked.astype(np.float64), 1e-30)).sum()
        unigram_nll -= unigram[targets].sum()
        rank = (probs > picked[:, None]).sum(axis=1)  # how many tokens the model preferred
        top1 += (rank == 0).sum()
        top5 += (rank < 5).sum()
        n += len(targets)
    return {
        "tokens": int(len(ids)),
        "targets": int(n),
        "perplexity": math.exp(nll / n),
        "top1_accuracy": top1 / n,
        "top5_accuracy": top5 / n,
        "oov_rate": float(np.mean(ids == UNK_ID)),
        "unigram_perplexity": math.exp(unigram_nll / n),
        "characters": chars,
        "bits_per_char": nll / math.log(2) / chars if chars else None,
    }


def token_logprobs(run: Run, ids: list[int], stepper, top: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every token of ids after the first scored as evaluate() scores a text (the same contexts, so their mean
    negative log-probability is its log perplexity), with the run's numpy stepper: each token's log-probability
    (n - 1,), and the `top` likeliest tokens at its place, ids and log-probabilities (n - 1, top)."""
    from lstm_textgen.generation.decode import top_logprobs

    chosen, best_ids, best = [np.zeros(0)], [np.zeros((0, top), np.intp)], [np.zeros((0, top))]
    for probs, targets in predictions(run, np.asarray(ids, dtype=np.int32), stepper):
        logprobs = np.log(np.maximum(probs.astype(np.float64), 1e-30))
        chosen.append(logprobs[np.arange(len(targets)), targets])
        top_ids, top_values = top_logprobs(logprobs, top)
        best_ids.append(top_ids)
        best.append(top_values)
    return np.concatenate(chosen), np.concatenate(best_ids), np.concatenate(best)


def predictions(run: Run, ids: np.ndarray, stepper=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(probabilities, targets) chunks covering ids[1:] in order, each token predicted once. stepper: the run's
    numpy Stepper, used instead of the Keras model (serve scores a prompt this way without TensorFlow)."""
    if run.config.train.stateful:
        yield from _carried(run, ids, stepper)
    elif run.config.model.objective == "sequence":
        forward = _keras(run.model) if stepper is None else _numpy(stepper.logits_sequence)
        yield from _consecutive_windows(forward, ids, run.config.data.window_size)
    else:
        forward = _keras(run.model) if stepper is None else _numpy(stepper.logits_full)
        yield from _sliding_windows(forward, ids, run.config.data.window_size)


def _keras(model):
    """The Keras model's probabilities for a batch of windows. compiled: predict_on_batch (a traced function,
    many times faster per call, one trace per shape); otherwise an eager call, for the few odd-shaped inputs."""
    def forward(inputs: np.ndarray, compiled: bool = True) -> np.ndarray:
        out = model.predict_on_batch(inputs) if compiled else model(inputs, training=False)
        return np.asarray(out, dtype=np.float32)
    return forward


def _numpy(logits):
    """The numpy stepper's probabilities for a batch of windows (every shape costs the same)."""
    from lstm_textgen.model.stepper import softmax

    return lambda inputs, compiled=True: softmax(logits(np.asarray(inputs, dtype=np.intp)))


def _consecutive_windows(forward, ids: np.ndarray, window: int):
    full = (len(ids) - 1) // window  # windows with all their targets; then one partial window
    starts = np.arange(full) * window
    for at in range(0, full, BATCH):
        cut = starts[at: at + BATCH, None] + np.arange(window + 1)  # (batch, window + 1) positions
        probs = forward(ids[cut[:, :-1]])  # (batch, window, vocab)
        yield probs.reshape(-1, probs.shape[-1]), ids[cut[:, 1:]].reshape(-1)
    rest = full * window
    if rest < len(ids) - 1:
        yield forward(ids[None, rest:-1], compiled=False)[0], ids[rest + 1:]


def _sliding_windows(forward, ids: np.ndarray, window: int):
    for t in range(1, min(window, len(ids))):  # the text's first tokens: a shorter context
        yield forward(ids[None, :t], compiled=False), ids[t:t + 1]
    starts = np.arange(len(ids) - window)
    for at in range(0, len(starts), LAST_BATCH):
        cut = starts[at: at + LAST_BATCH, None] + np.arange(window + 1)
        yield forward(ids[cut[:, :-1]]), ids[cut[:, -1]]


def _carried(run: Run, ids: np.ndarray, stepper=None):
    """The saved weights stepped in numpy with the state carried over the whole text."""
    from lstm_textgen.model.stepper import Stepper, softmax

    stepper = stepper or Stepper(run.weights)
    state = stepper.zero_state(1)
    for at in range(0, len(ids) - 1, STREAM_CHUNK):
        chunk = ids[at: min(at + STREAM_CHUNK, len(ids) - 1)]
        hidden = []
        for token in chunk:
            h, state = stepper.advance(state, np.array([token]))
            hidden.append(h)
        yield softmax(stepper.head(np.concatenate(hidden))), ids[at + 1: at + 1 + len(chunk)]


def unigram_log_probs(counts: list[int]) -> np.ndarray:
    """log p(token) from training counts with add-one smoothing (<pad> excluded)."""
    counts = np.asarray(counts, dtype=np.float64) + 1.0
    counts[PAD_ID] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(counts / counts.sum())


def format_report(report: dict) -> str:
    return "\n".join([
        f"evaluated {report['targets']:,} next-token predictions over {report['tokens']:,} tokens "
        "(every token after the first)",
        f"perplexity          {report['perplexity']:.2f}",
        f"top-1 accuracy      {report['top1_accuracy']:.2%}",
        f"top-5 accuracy      {report['top5_accuracy']:.2%}",
        f"OOV rate            {report['oov_rate']:.2%}",
        f"unigram perplexity  {report['unigram_perplexity']:.2f}  (baseline: word frequencies alone)",
        f"bits per character  {report['bits_per_char']:.4f}  (over {report['characters']:,} characters, "
        f"{report['unk_char_share']:.2%} of them inside <unk> tokens)",
    ])
