"""Fine-tuning (train.init_from, `train --from RUN`): a new run that starts from a trained one.

The base run is only read (its config.yaml, tokenizer.json, metrics.json and model.keras; never its corpus or
token cache). Owned here: the base's settings under the new run's, the settings that must stay the base's,
the vocabulary kept or extended on the new corpus, the first weights (the base's, with a row and a column
for each added token), the layers train.freeze keeps, and the origin record the new run carries.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from lstm_textgen.config import ORIGIN_KEY, SECTIONS, DataConfig
from lstm_textgen.config.setting import declared
from lstm_textgen.errors import CheckpointError, TextgenError
from lstm_textgen.run.files import CONFIG
from lstm_textgen.run.rundir import Run, check_run_dir, saved_config_values
from lstm_textgen.text.tokenizer import UNK_ID
from lstm_textgen.text.tokens import Tokens
from lstm_textgen.text.vocabulary import BaseVocabulary, in_base_vocabulary

log = logging.getLogger("lstm_textgen")


def _base_error(init_from: str, error: TextgenError) -> CheckpointError:
    return CheckpointError(f"cannot fine-tune from {init_from}: {error}")


def base_settings(init_from: str) -> dict:
    """The base run's saved settings for a new run to start from (what the new run's config file and --set
    values go on top of), without the keys each run sets for itself (declared finetune="own")."""
    path = Path(init_from).expanduser()
    try:
        check_run_dir(path)
        raw = saved_config_values(path)
    except TextgenError as e:
        raise _base_error(init_from, e) from None
    raw = {section: dict(body) if isinstance(body, dict) else body for section, body in raw.items()}
    raw.pop(ORIGIN_KEY, None)
    for section, cls in SECTIONS.items():
        for key, _, _, declared_policy in declared(cls):
            if declared_policy.finetune == "own" and isinstance(raw.get(section), dict):
                raw[section].pop(key, None)
    return raw


class Base:
    """A finished run read as the start of a new one: its config, tokenizer, metrics and weights (numpy, by layer)."""

    def __init__(self, init_from: str):
        self.given = init_from
        self.path = Path(self.given).expanduser()
        try:
            run = Run(self.path)  # a run with a finished epoch (model.keras), a config and a tokenizer
            self.config, self.tokenizer, self.metrics = run.config, run.tokenizer, run.metrics()
            self.config_sha256 = hashlib.sha256((self.path / CONFIG).read_bytes()).hexdigest()
            self.weights = {layer.name: layer.get_weights() for layer in run.model.layers if layer.weights}
        except TextgenError as e:  # run.model names a damaged model.keras
            raise _base_error(self.given, e) from None
        self.vocabulary: BaseVocabulary | None = None  # once tokenize() has read the new corpus
        log.info(f"Starting from the base run {self.given} (vocabulary {self.tokenizer.vocab_size:,}, best val "
                 f"perplexity {self.metrics.get('best_val_perplexity', float('nan')):,.2f})")

    def tokenize(self, data: DataConfig) -> Tokens:
        """The new corpus in the base's vocabulary, kept or extended (text/vocabulary.py)."""
        tokens, self.vocabulary = in_base_vocabulary(self.tokenizer, data)
        log.info(self.vocabulary.summary)
        return tokens

    def start_weights(self, tokenizer, tied: bool) -> dict[str, list[np.ndarray]]:
        """The new run's first weights by layer name: the base's, grown for the tokens extend added (tied:
        model.tie_weights, the output layer the embedding transposed)."""
        added = tokenizer.vocab_size - self.tokenizer.vocab_size
        return grow(self.weights, tokenizer.counts[-added:], tied) if added else self.weights

    def origin(self, tokenizer) -> dict:
        """What the new run records of its start (config.yaml, metrics.json, info)."""
        vocabulary = self.vocabulary
        return {"init_from": self.given, "path": str(self.path.resolve()), "config_sha256": self.config_sha256,
                "best_val_perplexity": self.metrics.get("best_val_perplexity"),
                "best_epoch": self.metrics.get("best_epoch"),
                "base_vocab": vocabulary.mode, "base_vocab_size": self.tokenizer.vocab_size,
                "added_tokens": tokenizer.vocab_size - self.tokenizer.vocab_size,
                "unknown_share": vocabulary.unknown_share}


def grow(weights: dict[str, list[np.ndarray]], counts: list[int], tied: bool) -> dict[str, list[np.ndarray]]:
    """The base's weights with an embedding row and an output column (and bias) for each added token, whose
    corpus counts are `counts`; every row and column of the base stays as it was, bit for bit.

    A new token starts as the base's <unk>, which stood for it until now: its embedding row and output column
    are <unk>'s, so the recurrent layers see what keep would show them. Its output bias is <unk>'s plus the log
    of its share of the added tokens' counts: the added tokens split between them what the base gave <unk>, the
    commoner ones more, and <unk> keeps its own. Training separates them from there (they appear in different
    contexts, so their gradients differ). With tied weights the output kernel is the grown embedding transposed.
    """
    grown = dict(weights)
    (matrix,) = weights["embedding"]
    n = len(counts)
    matrix = np.concatenate([matrix, np.repeat(matrix[UNK_ID: UNK_ID + 1], n, axis=0)])
    grown["embedding"] = [matrix]
    kernel, bias = weights["next_word"]
    share = np.asarray(counts, np.float64) / sum(counts)
    bias = np.concatenate([bias, (bias[UNK_ID] + np.log(share)).astype(bias.dtype)])
    kernel = matrix.T.copy() if tied else np.concatenate([kernel, np.repeat(kernel[:, UNK_ID: UNK_ID + 1], n, 1)], 1)
    grown["next_word"] = [kernel, bias]
    return grown


def set_weights(plain, weights: dict[str, list[np.ndarray]]) -> None:
    """Put weights (by layer name) into a freshly built plain stack of the same shape."""
    for name, values in weights.items():
        plain.get_layer(name).set_weights(values)


def freeze(models, names: list[str]) -> None:
    """Make the named layers untrainable in the saved stack and the training copy (model.Models), before
    compiling: both training steps update model.trainable_weights only, so they keep the base's weights."""
    for model in {id(m): m for m in (models.plain, models.training)}.values():
        for name in names:
            model.get_layer(name).trainable = False
