"""evaluate(): perplexity, top-1/top-5 accuracy, OOV rate and a unigram baseline on held-out text."""
from __future__ import annotations

import math

import numpy as np

from lstm_textgen.checkpoints import Run
from lstm_textgen.corpus import find_files, read_text
from lstm_textgen.data import count_windows, make_dataset, stride_for
from lstm_textgen.errors import CorpusError
from lstm_textgen.tokenizer import PAD_ID, UNK_ID


def evaluate(run: Run, corpus: list[str]) -> dict:
    """Score the run's model on the windows of corpus, cut as training cut its validation windows."""
    files = [path for spec in corpus for path in find_files(spec)]
    ids = np.concatenate([run.tokenizer.encode_array(read_text(path)) for path in files])
    data, objective = run.config.data, run.config.model.objective
    stride = stride_for(data, objective)
    if count_windows(len(ids), data.window_size, stride) == 0:
        raise CorpusError(f"{', '.join(map(str, files))} has {len(ids)} tokens, fewer than one window of "
                          f"{data.window_size + 1}; evaluate on a longer text")

    unigram = unigram_log_probs(run.tokenizer.counts)
    model = run.model
    n = nll = unigram_nll = top1 = top5 = 0.0
    for inputs, targets in make_dataset(ids, data.window_size, 256, objective, stride).as_numpy_iterator():
        probs = np.asarray(model(inputs, training=False), dtype=np.float64)  # (batch, [time,] vocab)
        if objective == "sequence":
            probs, targets = probs.reshape(-1, probs.shape[-1]), targets.reshape(-1)
        picked = probs[np.arange(len(targets)), targets]
        nll -= np.log(np.maximum(picked, 1e-30)).sum()
        unigram_nll -= unigram[targets].sum()
        rank = (probs > picked[:, None]).sum(axis=1)  # how many tokens the model preferred
        top1 += (rank == 0).sum()
        top5 += (rank < 5).sum()
        n += len(targets)
    return {
        "files": [str(p) for p in files],
        "tokens": int(len(ids)),
        "targets": int(n),
        "perplexity": math.exp(nll / n),
        "top1_accuracy": top1 / n,
        "top5_accuracy": top5 / n,
        "oov_rate": float(np.mean(ids == UNK_ID)),
        "unigram_perplexity": math.exp(unigram_nll / n),
    }


def unigram_log_probs(counts: list[int]) -> np.ndarray:
    """log p(token) from training counts with add-one smoothing (<pad> excluded)."""
    counts = np.asarray(counts, dtype=np.float64) + 1.0
    counts[PAD_ID] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(counts / counts.sum())


def format_report(report: dict) -> str:
    return "\n".join([
        f"evaluated {report['targets']:,} next-token predictions over {report['tokens']:,} tokens",
        f"perplexity          {report['perplexity']:.2f}",
        f"top-1 accuracy      {report['top1_accuracy']:.2%}",
        f"top-5 accuracy      {report['top5_accuracy']:.2%}",
        f"OOV rate            {report['oov_rate']:.2%}",
        f"unigram perplexity  {report['unigram_perplexity']:.2f}  (baseline: word frequencies alone)",
    ])
