"""Generation: seeds encoded (refused when the model cannot use them), their continuations decoded as one batch
(decode.py), and generate() and generate_many(), the library's calls."""
from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from lstm_textgen.config import GenerateConfig
from lstm_textgen.errors import ConfigError, TextgenError
from lstm_textgen.generation.decode import Batch, Row
from lstm_textgen.model.memory import available_bytes
from lstm_textgen.model.stepper import Stepper, blas_threads
from lstm_textgen.model.weights import ModelWeights
from lstm_textgen.run.rundir import Run, load_run
from lstm_textgen.text.tokenizer import PAD_ID, UNK_ID, Tokenizer
from lstm_textgen.usertext import check_text, decode_text
from lstm_textgen.config.values import shown


@dataclass
class Sample:
    seed: str
    text: str  # the continuation; seed + text is the whole passage
    random_seed: int
    tokens: list[int]
    unknown: list[str]
    settings: dict

    def to_dict(self) -> dict:
        return {"seed": self.seed, "text": self.text, "random_seed": self.random_seed,
                "settings": self.settings, "unknown_seed_words": self.unknown}


def encode_text(tokenizer: Tokenizer, text: str) -> list[int]:
    """The ids the model reads for a text: a typed "<pad>" is unknown too (the model never reads <pad>)."""
    return [UNK_ID if i == PAD_ID else i for i in tokenizer.encode(text)]


def encode_seed(tokenizer: Tokenizer, seed: str, what: str = "the seed phrase") -> tuple[list[int], list[str]]:
    """Seed ids (unknown words as <unk>) and the unknown words; refuses a seed the model cannot use (what names
    it: --seed, a prompt). Where spaces are text (char, bpe), a seed of spaces or line ends is text too."""
    seed = check_text(seed, what)
    if not seed.strip() and (not tokenizer.spaces_are_text or not seed):
        example = ', e.g. --seed "once upon a time"' if what in ("the seed phrase", "--seed") else ""
        raise TextgenError(f"{what} is empty; give some text to continue{example}")
    ids = encode_text(tokenizer, seed)
    unknown = tokenizer.unknown(seed)
    if all(i == UNK_ID for i in ids):
        raise TextgenError(f"no {tokenizer.unit} of {what} {shown(seed)} is in the model's vocabulary "
                           f"({', '.join(map(shown, unknown[:10]))}); use {tokenizer.unit}s from the training text")
    return ids, unknown


class Generator:
    """Samples continuations of several seeds at once, one recurrent step per token for the whole batch."""

    def __init__(self, tokenizer: Tokenizer, weights: ModelWeights):
        self.tokenizer = tokenizer
        self.stepper = Stepper(weights)
        self.pieces: dict = {}  # the detokenizers' memo of each token's text

    def sample(self, seeds: list[str], settings: GenerateConfig, random_seeds: list[int],
               on_piece: Callable[[int, str], None] | None = None,
               on_unknown: Callable[[str, list[str]], None] | None = None) -> list[Sample]:
        """One continuation per seed (row i draws with random_seeds[i]); on_piece(row, text) streams them.

        Every seed is encoded before the first token is drawn: a seed the model cannot use is refused before
        anything streams, and on_unknown(seed, words) hears of each seed with words outside the vocabulary.
        """
        settings.check()
        problem = settings.vocabulary_problem(self.stepper.vocab_size)
        if problem:
            raise ConfigError(problem)
        encoded = [encode_seed(self.tokenizer, seed) for seed in seeds]
        for seed, (_, unknown) in zip(seeds, encoded):
            if unknown and on_unknown and seed not in seeds[:seeds.index(seed)]:
                on_unknown(seed, unknown)
        with blas_threads():
            return self._sample(seeds, encoded, settings, random_seeds, on_piece)

    def _sample(self, seeds, encoded, settings, random_seeds, on_piece) -> list[Sample]:
        rows = [Row(self.tokenizer, ids, settings, random_seed, self.pieces, group=self)
                for (ids, _), random_seed in zip(encoded, random_seeds)]
        index = {id(row): i for i, row in enumerate(rows)}
        batch = Batch(self.stepper)
        batch.admit(rows)
        while batch.rows:
            for row, piece in batch.advance():
                if on_piece:
                    on_piece(index[id(row)], piece)
        public = asdict(settings)
        return [Sample(seed, row.text, rs, row.ids[row.seed_length:], unknown, public)
                for seed, row, rs, (_, unknown) in zip(seeds, rows, random_seeds, encoded)]


def seed_phrases(seed: str | None, seeds_file: str | None) -> list[str]:
    """The seed phrase, then those of a seeds file (one a line, blank lines skipped); refuses none at all, and
    text that is not UTF-8 or holds control characters."""
    seeds = [check_text(seed, "--seed")] if seed is not None else []
    if seeds_file:
        try:
            data = Path(seeds_file).read_bytes()
        except OSError as e:
            raise TextgenError(f"cannot read --seeds-file {seeds_file}: {e.strerror or e}") from None
        lines = [line for line in decode_text(data, f"--seeds-file {seeds_file}").split("\n") if line.strip()]
        if not lines:
            raise TextgenError(f"--seeds-file {seeds_file} has no seed phrases; write one a line")
        return seeds + lines
    if seed is None:
        raise TextgenError('give a seed phrase with --seed "once upon a time" (or --seeds-file FILE)')
    return seeds


def new_random_seed() -> int:
    return secrets.randbelow(2**31)


def settings_for(run: Run, **overrides) -> GenerateConfig:
    """The run's generate: section with the overrides that are not None, unchecked (Generator checks)."""
    return dataclasses.replace(run.config.generate, **{k: v for k, v in overrides.items() if v is not None})


def generate_many(run: Run | str | os.PathLike, seeds: list[str], samples: int = 1, random_seed: int | None = None,
                  on_piece: Callable[[int, str], None] | None = None,
                  on_unknown: Callable[[str, list[str]], None] | None = None, **settings) -> list[Sample]:
    """`samples` continuations of each seed, made as one batch: row i (seeds repeated, each `samples` times)
    draws with random_seed + i. settings are GenerateConfig fields; the rest come from the run's config."""
    if samples < 1:
        raise TextgenError(f"--samples must be >= 1, got {samples}")
    if random_seed is not None and random_seed < 0:
        raise TextgenError(f"--random-seed must be >= 0, got {random_seed}")
    run = run if isinstance(run, Run) else load_run(run)
    base = new_random_seed() if random_seed is None else random_seed
    settings = settings_for(run, **settings)
    generator = Generator(run.tokenizer, run.weights)
    need, have = batch_bytes(generator.stepper, len(seeds) * samples, settings.length), available_bytes()
    if have is not None and need > have:
        raise TextgenError(f"--samples {samples:,} for {len(seeds):,} seed{'s' if len(seeds) > 1 else ''} is a batch "
                           f"of {len(seeds) * samples:,} rows, which needs about {need / 1e9:,.1f} GB of memory, more "
                           f"than the {have / 1e9:,.1f} GB free; lower --samples (or -n), or generate in several runs")
    batch = [seed for seed in seeds for _ in range(samples)]
    return generator.sample(batch, settings, [base + i for i in range(len(batch))], on_piece, on_unknown)


def batch_bytes(stepper: Stepper, rows: int, length: int) -> int:
    """A generous estimate of the memory a batch of rows takes to generate length tokens each: a few copies of
    each row's logits, its recurrent state, and its text and history as Python objects."""
    units = sum(sum(part.units for part in layer) if isinstance(layer, tuple) else layer.units
                for layer in stepper.recurrent)
    per_row = 4 * (6 * stepper.vocab_size + 12 * units) + 160 * length + 4096
    return rows * per_row


def generate(run: Run | str | os.PathLike, seed: str, random_seed: int | None = None, **settings) -> str:
    """The continuation of seed (seed + result is the whole text); settings are GenerateConfig fields."""
    return generate_many(run, [seed], 1, random_seed, **settings)[0].text
