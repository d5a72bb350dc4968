"""train(config) -> run directory: the recipe that wires corpus, tokens, data, model, run directory and callbacks.

The folder is training/, not train/: a subpackage called `train` would shadow lstm_textgen.train, the function.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path

from lstm_textgen import __version__
from lstm_textgen.config import Config
from lstm_textgen.training.data import (batch_size_for, check_long_enough, check_streams_long_enough, count_windows,
                                        kept, make_dataset, make_stream_dataset, stream_windows, stride_for,
                                        with_auto)
from lstm_textgen.training.distribute import make_strategy, read_role, shard_by_data, strategy_scope, worker_run_dir
from lstm_textgen.errors import CheckpointError, ConfigError
from lstm_textgen.training.finetune import Base
from lstm_textgen.model.memory import check_fits, release_freed_memory
from lstm_textgen.training.plan import plan
from lstm_textgen.training.resume import finished, restore_best_model
from lstm_textgen.run.state import TrainingState, recorded_logs
from lstm_textgen.run.files import (CHECKPOINTS, CONFIG, LOCK, STATE, TOKENIZER, TOKENS, check_no_runs_read,
                                    check_outside_corpus, prepare_run_dir, remove_run_files)
from lstm_textgen.run.rundir import load_tokenizer, saved_origin
from lstm_textgen.run.stamp import save_config
from lstm_textgen.run.lock import RunLock
from lstm_textgen.text.cache import load_token_cache, save_token_cache
from lstm_textgen.text.tokens import tokenize_corpus

log = logging.getLogger("lstm_textgen")


def train(config: Config, mode: str = "auto", init_from: str | os.PathLike | None = None) -> Path:
    """Train the configured model; returns the run directory.

    mode: "auto" continues a run already in the directory (or starts one), "resume" insists on
    continuing, "restart" starts over, removing the run's own files once the whole command checks out.
    init_from: a trained run to start from (fine-tuning), as train.init_from sets it; the config's shape,
    level and tokenizer settings must be the base run's (finetune.py).
    """
    if init_from is not None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, init_from=str(init_from)))
    role = read_role(config.train.distribute)
    config = _for_worker(config, role)
    run_dir = config.run_dir
    existed = run_dir.exists()
    with RunLock(run_dir, LOCK) as lock:
        planned = plan(config, mode, lock)  # what the rest follows (plan.py)
        if planned.done:
            log.info(planned.done)
            return run_dir
        state = planned.state or TrainingState()
        try:
            _train(config, role, planned, state, lock)
        except BaseException:
            if planned.new and not (run_dir / CHECKPOINTS / STATE).exists():  # nothing trained: no half-made run
                remove_run_files(run_dir, state.logs.logs)
                if not existed:
                    with contextlib.suppress(OSError):
                        run_dir.rmdir()
            raise
    return run_dir


def _train(config: Config, role, plan, state: TrainingState, lock) -> None:
    """Every input checked (corpus, vocabulary, memory, vectors), then the run directory written and trained."""
    run_dir, data = config.run_dir, config.data
    check_outside_corpus(run_dir, data.corpus)
    check_no_runs_read(data.corpus)
    if data.val_corpus is not None:
        check_outside_corpus(run_dir, data.val_corpus, "validation corpus (data.val_corpus)")
        check_no_runs_read(data.val_corpus, "data.val_corpus")
    release_freed_memory()  # before TensorFlow allocates anything
    strategy = make_strategy(role)  # before any other TensorFlow work
    from lstm_textgen.model.stack import cudnn_blockers, precision
    for reason in cudnn_blockers(config.model, config.embedding):
        log.warning(f"warning: {reason}")
    keras_step = check_unrolled_only(config, strategy)

    base = plan.base  # a fine-tuned run's base, read (never written)
    tokenizer, train_ids, val_ids, val_chars = _tokens(config, run_dir, resuming=plan.state is not None,
                                                       cached=not plan.restart, base=base)
    check_long_enough(train_ids, val_ids, data)
    if plan.saved is not None:  # a resumed run keeps the values it started with
        config = kept(config, plan.saved)
    else:
        config = with_auto(config, len(train_ids), tokenizer.vocab_size, keras_step)
    given, config = config, _with_batch_size(config, len(train_ids))  # an older run's saved `auto` batch: its rule
    if config.train.stateful:
        check_streams_long_enough(train_ids, val_ids, data, config.train.batch_size)
    check_fits(config.model, config.embedding.dim, data.window_size, config.train.batch_size, tokenizer.vocab_size)
    log.info(f"corpus: {len(train_ids):,} training and {len(val_ids):,} validation tokens, "
             f"vocabulary {tokenizer.vocab_size:,} ({data.level} level)")
    embedding_matrix, coverage = None, None
    if config.embedding.path and plan.state is None and base is None:  # else the matrix is in the weights
        from lstm_textgen.text.embeddings import load_embedding_matrix
        embedding_matrix, coverage = load_embedding_matrix(config.embedding, tokenizer, train_ids,
                                                           seed=config.train.seed)
        log.info(coverage["summary"])
    start = base.start_weights(tokenizer, config.model.tie_weights) if base else None
    origin = base.origin(tokenizer) if base else saved_origin(run_dir) if plan.state is not None else None

    if plan.restart:
        remove_run_files(run_dir, recorded_logs(run_dir))  # only now: the whole command has checked out
    prepare_run_dir(run_dir, new=plan.state is None)
    lock.acquire()
    save_config(run_dir / CONFIG, given, origin)
    if plan.state is None:
        tokenizer.save(run_dir / TOKENIZER, __version__)
    train_ids, val_ids = save_token_cache(run_dir / TOKENS, data, train_ids, val_ids, val_chars)  # mapped from it
    if plan.state is not None:
        restore_best_model(run_dir, plan.state)
    summary = {"corpus": data.corpus, "vocab_size": tokenizer.vocab_size, "train_tokens": int(len(train_ids)),
               "val_tokens": int(len(val_ids)), "val_chars": val_chars, "embedding_coverage": coverage,
               **({"origin": origin} if origin else {})}
    with precision(config.train.mixed_precision):  # the global policy is put back even on an error
        _fit(config, state, strategy, tokenizer, train_ids, val_ids, (embedding_matrix, start), summary)


def _with_batch_size(config: Config, n_train_tokens: int) -> Config:
    """config with train.batch_size=auto worked out (data.batch_size_for), said in the log."""
    if config.train.batch_size != "auto":
        return config
    batch = batch_size_for(config.train, config.data, config.model.objective, n_train_tokens)
    log.info(f"train.batch_size=auto: {batch} rows a step, for {n_train_tokens:,} training tokens")
    return dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size=batch))


def check_unrolled_only(config: Config, strategy) -> str | None:
    """model.weight_drop, embedding_dropout, activation_reg and temporal_reg are the unrolled step's: refuse them
    where Keras' own step would train (and apply none of them); returns why Keras' step trains, or None
    (weight_drop=auto is then 0: data.with_auto)."""
    from lstm_textgen.model.step import unrolled_blocker

    blocker = unrolled_blocker(config.model, config.embedding, config.train, strategy)
    for key in ("weight_drop", "embedding_dropout", "activation_reg", "temporal_reg"):
        value = getattr(config.model, key)
        if value != "auto" and value > 0 and blocker is not None:
            raise ConfigError(f"model.{key}={value:g} needs the unrolled CPU step, and this run would train on "
                              f"Keras' own step ({blocker}); set --set model.{key}=0")
    return blocker


def _fit(config: Config, state: TrainingState, strategy, tokenizer, train_ids, val_ids, initial: tuple,
         summary: dict) -> None:
    """Build (or restore) the model and run model.fit with the run directory's callbacks."""
    from lstm_textgen.training.callbacks import Session, progress_bar, stop_on_signals
    from lstm_textgen.training.monitor import monitoring_callbacks
    from lstm_textgen.training.validation import Streams

    run_dir, data, train_config = config.run_dir, config.data, config.train
    models, step = _models(config, state, strategy, tokenizer.vocab_size, *initial)
    objective, batch = config.model.objective, train_config.batch_size
    stride = stride_for(data, objective)
    n_windows = count_windows(len(train_ids), data.window_size, stride)
    if train_config.stateful:  # batch rows are streams: an epoch is one pass along them
        n_windows = stream_windows(len(train_ids), data.window_size, batch) * batch
    steps = train_config.steps_per_epoch or max(1, n_windows // batch)
    model = models.training
    log.info(f"training {model.count_params():,} parameters on {n_windows:,} windows, {steps:,} steps "
             f"an epoch, into {run_dir}; step: {step}")

    session = Session(run_dir, state, batch * (data.window_size if objective == "sequence" else 1), batch)
    summary = {"lstm_textgen_version": __version__, **summary, "parameters": int(model.count_params()),
               "batch_size": batch}
    shard = shard_by_data if strategy is not None else (lambda dataset: dataset)
    monitoring = monitoring_callbacks(config.train, run_dir, models, state)  # may refuse a setting: before any bar
    progress = progress_bar(session, train_config.epochs)
    callbacks = [*_run_callbacks(config, session, models, summary, steps), *monitoring, progress]
    if train_config.stateful:  # stateful runs train on one device (config refuses a strategy): no sharding
        val_set = make_stream_dataset(val_ids, data.window_size, batch)
        callbacks.insert(0, Streams(session))
    else:
        val_set = shard(make_dataset(val_ids, data.window_size, batch, objective, stride))

    def fit(epochs: int, steps_per_epoch: int) -> None:
        if train_config.stateful:
            train_set = make_stream_dataset(train_ids, data.window_size, batch, start=state.progress.global_step)
        else:
            train_set = make_dataset(train_ids, data.window_size, batch, objective, stride, shuffle=True,
                                     seed=train_config.seed, start=state.progress.global_step * batch)
        model.fit(shard(train_set), initial_epoch=state.progress.epoch, epochs=epochs, steps_per_epoch=steps_per_epoch,
                  validation_data=val_set, callbacks=callbacks, verbose=0,
                  shuffle=False)  # the dataset shuffles itself

    with stop_on_signals(session):
        try:
            if state.progress.step:  # finish the interrupted epoch with the steps it had left
                fit(state.progress.epoch + 1, max(steps - state.progress.step, 1))
            if not finished(config.train, state):
                fit(train_config.epochs, steps)
        finally:
            progress.on_train_end()  # clear the bars, so an error message starts on a line of its own


def _models(config: Config, state: TrainingState, strategy, vocab_size: int, embedding_matrix, start):
    """The compiled model.Models, restored to where the state stands, and which training step runs them.

    A new run starts from a pretrained embedding_matrix, or a fine-tuned one from its base's weights (start,
    by layer name); train.freeze's layers are made untrainable before compiling.
    """
    import keras

    from lstm_textgen.training.finetune import freeze, set_weights

    from lstm_textgen.model.step import Regularization, step_name, unrolled_blocker, use_unrolled_step
    from lstm_textgen.model.stack import Models, build_model, compile_model, mid_sequence_masks
    from lstm_textgen.training.resume import current_learning_rate, restore_state

    keras.utils.set_random_seed(config.train.seed)
    with strategy_scope(strategy):
        cudnn = False if mid_sequence_masks(config.embedding) else "auto"
        plain = build_model(config.model, vocab_size, config.embedding.dim, embedding_matrix,
                            config.embedding.trainable, use_cudnn=cudnn)
        if start:
            set_weights(plain, start)  # before Models: a training copy starts as the plain stack
        models = Models(plain, config.model, config.train)
        freeze(models, config.train.freeze)
        compile_model(models.training, config.train)
        restore_state(models, config.run_dir, state, current_learning_rate(state, config.train.learning_rate))
    blocker = unrolled_blocker(config.model, config.embedding, config.train, strategy)
    if blocker is not None:
        return models, f"Keras ({blocker})"
    name, bfloat16 = step_name(config.train)
    use_unrolled_step(models.training, bfloat16, Regularization.of(config.model))
    return models, name


def _run_callbacks(config: Config, session, models, summary: dict, steps: int) -> list:
    """The callbacks that keep the run directory current, in the order they must run (callbacks.py); steps: an
    epoch's."""
    from lstm_textgen.training.callbacks import Backup, BestModel, EarlyStop, HistoryWriter, StepCounter, TimeBudget
    from lstm_textgen.training.schedules import Decay, Plateau
    from lstm_textgen.training.validation import Averaged

    train = config.train
    decay = (Decay(session, train.lr_decay, train.learning_rate, train.min_learning_rate, train.max_minutes,
                   train.epochs * steps) if train.lr_decay != "none" else None)
    plateau = (Plateau(session, train.reduce_lr_patience, train.reduce_lr_factor, train.min_learning_rate,
                       train.reduce_lr_min_delta, decay) if train.reduce_lr_patience else None)
    schedule = [callback for callback in (plateau, decay) if callback is not None]
    return [StepCounter(session), BestModel(session, models, train.keep_checkpoints),
            EarlyStop(session, train.early_stopping_patience), *schedule, TimeBudget(session, train.max_minutes),
            HistoryWriter(session, summary), *([Averaged()] if train.ema_momentum else []),
            Backup(session, train.backup_every_steps)]


def _for_worker(config: Config, role) -> Config:
    """The config this worker trains: a worker other than the chief writes to a scratch folder of its own."""
    run_dir = worker_run_dir(role, config.run_dir)
    if run_dir == config.run_dir:
        return config
    log.info(f"{role.task_type} {role.task_index} of {role.workers}: the chief writes {config.run_dir}; "
             f"this worker's copy goes to {run_dir}")
    return dataclasses.replace(config, train=dataclasses.replace(config.train, run_dir=str(run_dir)))


def _tokens(config: Config, run_dir: Path, resuming: bool, cached: bool = True, base: Base | None = None):
    """The tokenizer and token arrays: a new fine-tuned run's from its base (finetune.Base.tokenize), else from
    the run's cache when it is current (and wanted: a restart removes it), else from the corpus; a resumed
    run's corpus must give back the very vocabulary it started with (a moved run, a deleted cache)."""
    if base is not None:
        return base.tokenize(config.data)
    cache = load_token_cache(run_dir / TOKENS, run_dir / TOKENIZER, config.data) if cached else None
    if cache is not None:
        log.info(f"using the tokenized corpus cached in {run_dir / TOKENS}")
        return cache
    # A resumed run encodes with its own vocabulary (bpe: the merges it learned, which learning again could break
    # a tie in; a fine-tuned run: its base's, kept or extended), and the counts must come out the same.
    saved = load_tokenizer(run_dir) if resuming else None
    tokens = tokenize_corpus(config.data, like=saved)
    if saved is not None:
        if (saved.vocab, saved.counts) != (tokens.tokenizer.vocab, tokens.tokenizer.counts):
            raise CheckpointError(f"cannot resume {run_dir}: the corpus {config.data.corpus} is not the text the run "
                                  "started on (its vocabulary differs); train on that text, or train a new run with "
                                  "another --run")
        log.info(f"the corpus is the one the run started on: its token cache {run_dir / TOKENS} is written again")
    return tokens
