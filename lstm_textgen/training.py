"""train(config) -> run directory: the one module that wires corpus, tokenizer, data, model and checkpoints.

Named training.py, not train.py: a submodule called `train` would shadow lstm_textgen.train, the function.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from lstm_textgen import __version__
from lstm_textgen.checkpoints import CHECKPOINTS, TOKENIZER, prepare_run_dir, save_config
from lstm_textgen.config import Config
from lstm_textgen.corpus import read_corpus
from lstm_textgen.data import check_long_enough, count_windows, encode_splits, make_dataset, stride_for
from lstm_textgen.tokenizer import Tokenizer

log = logging.getLogger("lstm_textgen")


def train(config: Config) -> Path:
    """Train the configured model on the configured corpus; returns the run directory."""
    data, run_dir = config.data, config.run_dir
    texts = read_corpus(data.corpus)
    tokenizer = Tokenizer.fit((text for _, text in texts), data.level, data.lowercase, data.max_vocab,
                              data.min_count)
    train_ids, val_ids = encode_splits(texts, tokenizer, data.val_fraction)
    del texts
    check_long_enough(train_ids, val_ids, data)
    log.info(f"corpus: {len(train_ids):,} training and {len(val_ids):,} validation tokens, "
             f"vocabulary {tokenizer.vocab_size:,} ({data.level} level)")

    embedding_matrix, coverage = None, None
    if config.embedding.path:
        from lstm_textgen.embeddings import load_embedding_matrix
        embedding_matrix, coverage = load_embedding_matrix(config.embedding, tokenizer, train_ids, seed=config.train.seed)
        log.info(coverage["summary"])

    prepare_run_dir(run_dir)
    save_config(run_dir, config)
    tokenizer.save(run_dir / TOKENIZER, __version__)

    import keras

    from lstm_textgen.callbacks import RunWriter
    from lstm_textgen.model import build_model, compile_model

    keras.utils.set_random_seed(config.train.seed)
    model = build_model(config.model, tokenizer.vocab_size, config.embedding.dim, embedding_matrix,
                        config.embedding.trainable)
    compile_model(model, config.train)

    objective, batch = config.model.objective, config.train.batch_size
    stride = stride_for(data, objective)
    n_windows = count_windows(len(train_ids), data.window_size, stride)
    steps = config.train.steps_per_epoch or max(1, n_windows // batch)
    train_set = make_dataset(train_ids, data.window_size, batch, objective, stride, shuffle=True,
                             seed=config.train.seed)
    val_set = make_dataset(val_ids, data.window_size, batch, objective, stride)
    targets_per_step = batch * (data.window_size if objective == "sequence" else 1)
    log.info(f"training {model.count_params():,} parameters on {n_windows:,} windows, {steps:,} steps "
             f"an epoch, into {run_dir}")

    summary = {"lstm_textgen_version": __version__, "corpus": data.corpus, "vocab_size": tokenizer.vocab_size,
               "train_tokens": int(len(train_ids)), "val_tokens": int(len(val_ids)),
               "parameters": int(model.count_params()), "embedding_coverage": coverage}
    callbacks = [RunWriter(run_dir, targets_per_step, config.train.keep_checkpoints, summary),
                 _progress_bar()]
    if config.train.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss",
                                                       patience=config.train.early_stopping_patience))
    model.fit(train_set, epochs=config.train.epochs, steps_per_epoch=steps, validation_data=val_set,
              callbacks=callbacks, verbose=0, shuffle=False)  # the dataset shuffles itself
    return run_dir


def _progress_bar():
    from tqdm.keras import TqdmCallback

    return TqdmCallback(verbose=1, leave=False)
