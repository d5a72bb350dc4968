"""The benchmarks by name: what each measures, against what, and roughly how long it takes on a 2-core laptop CPU.

`python -m benchmarks NAME` runs benchmarks/NAME.py. Nothing heavy is imported here: the listing and
benchmarks.results read this table without TensorFlow.
"""
from __future__ import annotations

from typing import NamedTuple


class Benchmark(NamedTuple):
    measures: str  # one line: what the benchmark measures
    baseline: str  # what its figures are compared with, measured in the same run
    duration: str  # roughly, with its default arguments, on a 2-core laptop CPU with nothing else running


BENCHMARKS = {
    "train": Benchmark(
        "training speed of the reference model and of quality.yaml's shape, against plain Keras, PyTorch and "
        "the arithmetic floor",
        "a plain Keras model.fit loop (windows/s)", "15 min"),
    "floor": Benchmark(
        "the arithmetic floor of one training step: the windows/s no implementation can exceed",
        "numpy's 2048 x 2048 matrix product (GFLOP/s)", "1 min"),
    "generate": Benchmark(
        "generation speed on the reference-sized model: tokens/s, batching, time to first token",
        "Keras model.predict per token (tokens/s)", "1 min"),
    "serve": Benchmark(
        "`lstm-textgen serve` under load: tokens/s and time to first token for 1, 8 and 32 streaming clients",
        "the first (1-client) level's tokens/s", "1 min"),
    "inspect": Benchmark(
        "`lstm-textgen inspect` reading 10,000 tokens of a 2 x 256 model and writing its page",
        "`lstm-textgen evaluate` of the same text by the same run", "1 min"),
    "export": Benchmark(
        "`lstm-textgen export`: each format's size (float32, float16, int8), check figures and single-stream "
        "tokens/s of its runtime, and the web page's tokens/s in Chromium",
        "the numpy stepper's single-stream tokens/s (what generate uses)", "6 min"),
    "corpus": Benchmark(
        "tokenizing a 100 MB corpus: time and peak memory of the streaming path, and peak memory of training "
        "on it",
        "reading the whole text, splitting, counting and encoding it (naive)", "10 min"),
    "embeddings": Benchmark(
        "loading pretrained vectors: time and peak memory of load_embedding_matrix on a 400,000-word file",
        "the keras-io way: every vector into a dict first (naive)", "2 min"),
    "quality": Benchmark(
        "validation perplexity after the same minutes: configs/reference.yaml, configs/quality.yaml and the "
        "PyTorch word LM recipe",
        "configs/reference.yaml's per-token perplexity (and the PyTorch recipe's)",
        "1 h 40 min"),
    "charrnn": Benchmark(
        "character level: held-out bits per character of configs/char.yaml and of karpathy/char-rnn's recipe in "
        "PyTorch after the same minutes",
        "the char-rnn recipe's bits per character, on the same characters", "1 h"),
    "levels": Benchmark(
        "word, char and bpe levels on one scale: held-out bits per character after the same minutes",
        "none: the levels are compared with each other", "35 min"),
    "finetune": Benchmark(
        "fine-tuning a base run (keep, extend, frozen) against training from scratch for the same minutes on a "
        "small corpus",
        "the run trained from scratch on the same corpus (per-token perplexity)",
        "1 h 45 min"),
    "epoch1": Benchmark(
        "why a stateful run's validation perplexity after epoch 1 can be many times its training perplexity",
        "the 0.1 recipe's training perplexity after epoch 1", "4 min"),
}
