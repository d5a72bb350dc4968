"""The settings a config leaves to `auto`, worked out once, when a run starts, and written into its config.yaml (a
resumed run keeps them: a changed budget would otherwise change the model or the batch halfway).

train.batch_size: the rows that make an epoch about 400 steps (data.batch_size_for), but fewer where the budget
would then make fewer than MIN_STEPS steps in all: a short run needs updates more than rows.

model.dropout, model.weight_drop, model.dense_dropout: from how hard the run can overfit: the passes over the training text its budget
buys, times the model's weights per training token. A run that reads a large text a few times is still
learning it and wants little; a model with many weights per token that reads its text many times would learn
it by heart and wants much. docs/guides/recipes.md gives the rule and the runs that set it.

Passes come from a cost model of one training step on the CPU (a fixed part for the gradients and Adam's
update of every weight, and a part for each token's multiply-adds), calibrated on the project's 2-core machine;
with no train.max_minutes, the epochs are the passes. A run keeps the values it started with: they are written
into its config.yaml, and a resumed run with `auto` takes them from there (a changed budget would otherwise
change the model halfway).
"""
from __future__ import annotations

import dataclasses
import logging
import math

from lstm_textgen.config import Config
from lstm_textgen.model.memory import parameters
from lstm_textgen.training.data import AUTO_ROWS, batch_size_for, count_windows, stride_for

log = logging.getLogger("lstm_textgen")

KEYS = ("dropout", "weight_drop", "dense_dropout")  # the model: settings that may be `auto`
MIN_STEPS = 3_000  # train.batch_size=auto: fewer rows where the budget would make fewer steps (5 minutes of War and
# Peace: 21 rows, not 40; 20 rows scored 85.1 where 40 scored 89.3, docs/quality-history.md)
SECONDS_PER_WEIGHT = 9.0e-9  # a step's fixed cost, per weight (gradients and Adam's update of each)
SECONDS_PER_MAC = 2.4e-11  # a trained token's cost, per multiply-add of its forward pass (backward included)
# Calibrated 2026-12-06 on the 2-core machine (AMD EPYC, bfloat16 products), a tied 2 x 256 LSTM, vocabulary 10,000:
# 5,400 tokens/s at 10 rows a step, 8,800 at 40 (docs/quality-history.md, "Regularisation that follows the budget").

# The rule: each value is its low one up to LOW pressure, its high one from HIGH on, and in between linear in
# log2(pressure). The low values are configs/char.yaml's, tuned for 30 minutes of War and Peace's characters
# (pressure about 8: 20 passes by the cost model, of 1.1 M weights over 2.9 M characters), and won for 5 minutes
# of its words (about 23: 4 passes of 3.7 M weights over 657,000 words); the high ones are configs/quality.yaml's,
# tuned for 30 minutes of its words (about 137: 24 passes) and no worse than more or less on Beyond Good and Evil.
LOW, HIGH = 24.0, 128.0
RULE = {  # key: (low, high)
    "dropout": (0.1, 0.4),
    "weight_drop": (0.2, 0.5),
    "dense_dropout": (0.1, 0.4),
}


def is_auto(config: Config) -> bool:
    return config.train.batch_size == "auto" or any(getattr(config.model, key) == "auto" for key in KEYS)


def forward_macs(config: Config, vocab_size: int) -> int:
    """Multiply-adds of one token's forward pass: every weight once, but of the embedding only its row, and a tied
    output layer's matrix once more (it is the embedding, read as the softmax)."""
    model, dim = config.model, config.embedding.dim
    macs = parameters(model, dim, vocab_size) - vocab_size * dim
    return macs + (vocab_size * model.dense_units if model.tie_weights else 0)


def step_seconds(config: Config, vocab_size: int, rows: int) -> float:
    """One training step's seconds by the cost model."""
    return (SECONDS_PER_WEIGHT * parameters(config.model, config.embedding.dim, vocab_size)
            + SECONDS_PER_MAC * rows * config.data.window_size * forward_macs(config, vocab_size))


def steps(config: Config, n_train_tokens: int, vocab_size: int, rows: int) -> tuple[int, float]:
    """(steps an epoch, steps the run will make): train.epochs of them, or fewer where train.max_minutes ends it
    first by the cost model."""
    data, train = config.data, config.train
    windows = count_windows(n_train_tokens, data.window_size, stride_for(data, config.model.objective))
    epoch = train.steps_per_epoch or max(1, math.ceil(windows / rows))
    total = float(train.epochs * epoch)
    if train.max_minutes is not None:
        total = min(total, train.max_minutes * 60 / step_seconds(config, vocab_size, rows))
    return epoch, total


def passes(config: Config, n_train_tokens: int, vocab_size: int, rows: int) -> float:
    """The passes over the training windows this run will make."""
    epoch, total = steps(config, n_train_tokens, vocab_size, rows)
    return total / epoch


def rows_for(config: Config, n_train_tokens: int, vocab_size: int) -> int:
    """train.batch_size=auto for a new run: data.batch_size_for's rows, fewer (down to its lowest) while the run
    would make fewer than MIN_STEPS steps."""
    rows = batch_size_for(config.train, config.data, config.model.objective, n_train_tokens)
    while config.train.batch_size == "auto" and rows > AUTO_ROWS[0] and steps(config, n_train_tokens, vocab_size, rows)[1] < MIN_STEPS:
        rows -= 1
    return rows


def pressure(config: Config, n_train_tokens: int, vocab_size: int, rows: int) -> float:
    """How hard the run can overfit: passes times weights per training token."""
    weights = parameters(config.model, config.embedding.dim, vocab_size)
    return passes(config, n_train_tokens, vocab_size, rows) * weights / max(n_train_tokens, 1)


def rule(key: str, press: float) -> float:
    """The value of model.KEY for a run of this pressure, to two decimals."""
    low, high = RULE[key]
    share = math.log2(max(press, LOW) / LOW) / math.log2(HIGH / LOW)
    return round(low + (high - low) * min(share, 1.0), 2)


def with_auto(config: Config, n_train_tokens: int, vocab_size: int, keras_step: str | None = None,
              new: bool = True) -> Config:
    """config with each `auto` worked out, said in the log; weight_drop is 0 where Keras' own step trains
    (keras_step says why), which has no DropConnect. A run that is not new (one resumed whose saved config.yaml
    still says batch_size auto, as runs before this rule wrote it) keeps the batch rule it started with."""
    if not is_auto(config):
        return config
    plain = batch_size_for(config.train, config.data, config.model.objective, n_train_tokens)
    rows = rows_for(config, n_train_tokens, vocab_size) if new else plain
    if config.train.batch_size == "auto" and new:
        fewer = (f" (not {plain}: the budget makes about {steps(config, n_train_tokens, vocab_size, rows)[1]:,.0f} "
                 f"steps, at least {MIN_STEPS:,} wanted)") if rows < plain else ""
        log.info(f"train.batch_size=auto: {rows} rows a step, for {n_train_tokens:,} training tokens{fewer}")
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size=rows))
    values = {key: getattr(config.model, key) for key in KEYS if getattr(config.model, key) == "auto"}
    if not values:
        return config
    press = pressure(config, n_train_tokens, vocab_size, rows)
    values = {key: rule(key, press) for key in values}
    if keras_step is not None and "weight_drop" in values:
        values["weight_drop"] = 0.0
        log.info(f"model.weight_drop=auto: 0, as Keras' own step trains ({keras_step})")
    weights = parameters(config.model, config.embedding.dim, vocab_size)
    log.info(f"model {', '.join(f'{k}={v}' for k, v in values.items())} (auto): about "
             f"{passes(config, n_train_tokens, vocab_size, rows):,.1f} passes over {n_train_tokens:,} training "
             f"tokens of {weights / n_train_tokens:,.2f} weights each: pressure {press:,.0f}")
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **values))


def kept(config: Config, saved: Config) -> Config:
    """A resumed run's config: each `auto` takes the value the run started with (its saved config's)."""
    values = {key: getattr(saved.model, key) for key in KEYS if getattr(config.model, key) == "auto"}
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, **values)) if values else config
    if config.train.batch_size == "auto":
        config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       batch_size=saved.train.batch_size))
    return config
