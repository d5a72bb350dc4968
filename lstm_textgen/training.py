"""train(config) -> run directory: the one module that wires corpus, tokenizer, data, model and checkpoints.

Named training.py, not train.py: a submodule called `train` would shadow lstm_textgen.train, the function.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import signal
import threading
from pathlib import Path

from lstm_textgen import __version__
from lstm_textgen.checkpoints import (CHECKPOINTS, CONFIG, CURVES, HISTORY, METRICS, MODEL, SAMPLES, TENSORBOARD,
                                      TOKENIZER, TrainingState, config_changes, load_saved_config, prepare_run_dir,
                                      save_config)
from lstm_textgen.config import Config
from lstm_textgen.data import (TOKENS, check_long_enough, check_streams_long_enough, count_windows, load_token_cache,
                               make_dataset, make_stream_dataset, save_token_cache, stream_windows, stride_for,
                               tokenize_corpus)
from lstm_textgen.distribute import make_strategy, read_role, shard_by_data, strategy_scope, worker_run_dir
from lstm_textgen.errors import CheckpointError
from lstm_textgen.memory import release_freed_memory

log = logging.getLogger("lstm_textgen")
RUN_FILES = (CONFIG, TOKENIZER, MODEL, HISTORY, METRICS, CHECKPOINTS, TOKENS, SAMPLES, CURVES, TENSORBOARD)


class TrainingStopped(Exception):
    """Training was stopped by a signal after saving a resumable state."""

    def __init__(self, run_dir: Path, state: TrainingState):
        super().__init__(f"Stopped at epoch {state.epoch + 1}, step {state.step}; the state is saved: "
                         f"run the same command again to continue ({run_dir})")


def train(config: Config, mode: str = "auto") -> Path:
    """Train the configured model; returns the run directory.

    mode: "auto" continues a run already in the directory (or starts one), "resume" insists on
    continuing, "restart" deletes what is there and starts over.
    """
    role = read_role(config.train.distribute)
    config = _for_worker(config, role)
    run_dir = config.run_dir
    state = _start_or_resume(config, run_dir, mode)
    if state is not None and _finished(config, state):
        why = (" and spent train.max_minutes" if _out_of_time(config, state)
               else " and stopped early" if state.stopped_early else "")
        log.info(f"{run_dir} has already trained {state.epoch} epochs{why}; nothing to do "
                 "(raise --set train.epochs or train.max_minutes to train longer, or pass --restart)")
        return run_dir
    release_freed_memory()  # before TensorFlow allocates anything
    strategy = make_strategy(role)  # before any other TensorFlow work
    from lstm_textgen.model import cudnn_blockers
    for reason in cudnn_blockers(config):
        log.warning(f"warning: {reason}")

    tokenizer, train_ids, val_ids = _tokens(config, run_dir, resuming=state is not None)
    data = config.data
    check_long_enough(train_ids, val_ids, data)
    if config.train.stateful:
        check_streams_long_enough(train_ids, val_ids, data, config.train.batch_size)
    log.info(f"corpus: {len(train_ids):,} training and {len(val_ids):,} validation tokens, "
             f"vocabulary {tokenizer.vocab_size:,} ({data.level} level)")

    embedding_matrix, coverage = None, None
    if config.embedding.path and state is None:  # a resumed run takes its matrix from the saved weights
        from lstm_textgen.embeddings import load_embedding_matrix
        embedding_matrix, coverage = load_embedding_matrix(config.embedding, tokenizer, train_ids,
                                                           seed=config.train.seed)
        log.info(coverage["summary"])

    prepare_run_dir(run_dir)
    save_config(run_dir, config)
    if state is None:
        tokenizer.save(run_dir / TOKENIZER, __version__)
        train_ids, val_ids = save_token_cache(run_dir, data, train_ids, val_ids)  # now memory-mapped from it

    from lstm_textgen.model import precision

    summary = {"corpus": data.corpus, "vocab_size": tokenizer.vocab_size, "train_tokens": int(len(train_ids)),
               "val_tokens": int(len(val_ids)), "embedding_coverage": coverage}
    with precision(config.train.mixed_precision):  # the global policy is put back even on an error
        _fit(config, state or TrainingState(), strategy, tokenizer, train_ids, val_ids, embedding_matrix, summary)
    return run_dir


def _fit(config: Config, state: TrainingState, strategy, tokenizer, train_ids, val_ids, embedding_matrix,
         summary: dict) -> None:
    """Build (or restore) the model and run model.fit with the run directory's callbacks."""
    import keras

    from lstm_textgen.callbacks import Interrupted, Plateau, RunWriter, current_learning_rate, restore_state
    from lstm_textgen.model import build_model, compile_model, mid_sequence_masks
    from lstm_textgen.monitor import monitoring_callbacks
    from lstm_textgen.stream import StreamResets, needs_training_model, training_model
    from lstm_textgen.unrolled import unrolled_blocker, use_unrolled_step

    run_dir, data = config.run_dir, config.data
    keras.utils.set_random_seed(config.train.seed)
    with strategy_scope(strategy):
        model = build_model(config.model, tokenizer.vocab_size, config.embedding.dim, embedding_matrix,
                            config.embedding.trainable, use_cudnn=False if mid_sequence_masks(config) else "auto")
        model = training_model(model, config) if needs_training_model(config) else model
        compile_model(model, config.train)
        restore_state(model, run_dir, state, current_learning_rate(state, config.train.learning_rate))
    blocker = unrolled_blocker(config, strategy)
    if blocker is None:
        use_unrolled_step(model)

    objective, batch = config.model.objective, config.train.batch_size
    stride = stride_for(data, objective)
    n_windows = count_windows(len(train_ids), data.window_size, stride)
    if config.train.stateful:  # batch rows are streams: an epoch is one pass along them
        n_windows = stream_windows(len(train_ids), data.window_size, batch) * batch
    steps = config.train.steps_per_epoch or max(1, n_windows // batch)
    targets_per_step = batch * (data.window_size if objective == "sequence" else 1)
    log.info(f"training {model.count_params():,} parameters on {n_windows:,} windows, {steps:,} steps "
             f"an epoch, into {run_dir}; step: {'unrolled' if blocker is None else 'Keras (' + blocker + ')'}")

    summary = {"lstm_textgen_version": __version__, **summary, "parameters": int(model.count_params())}
    train_config = config.train
    plateau = (Plateau(train_config.reduce_lr_patience, train_config.reduce_lr_factor, train_config.min_learning_rate,
                       train_config.reduce_lr_min_delta) if train_config.reduce_lr_patience else None)
    writer = RunWriter(run_dir, state, targets_per_step, batch, config.train.early_stopping_patience,
                       config.train.keep_checkpoints, config.train.backup_every_steps, summary,
                       train_config.max_minutes, plateau)
    shard = shard_by_data if strategy is not None else (lambda dataset: dataset)
    monitoring = monitoring_callbacks(config, run_dir)  # may refuse a setting: do it before any bar is drawn
    progress = _progress_bar()
    callbacks = [writer, *monitoring, progress]
    if config.train.stateful:  # stateful runs train on one device (config refuses a strategy): no sharding
        val_set = make_stream_dataset(val_ids, data.window_size, batch)
        callbacks.insert(0, StreamResets(state))
    else:
        val_set = shard(make_dataset(val_ids, data.window_size, batch, objective, stride))

    def fit(epochs: int, steps_per_epoch: int) -> None:
        if config.train.stateful:
            train_set = make_stream_dataset(train_ids, data.window_size, batch, start=state.global_step)
        else:
            train_set = make_dataset(train_ids, data.window_size, batch, objective, stride, shuffle=True,
                                     seed=config.train.seed, start=state.global_step * batch)
        model.fit(shard(train_set), initial_epoch=state.epoch, epochs=epochs, steps_per_epoch=steps_per_epoch,
                  validation_data=val_set, callbacks=callbacks, verbose=0,
                  shuffle=False)  # the dataset shuffles itself

    with _stop_on_signals(writer):
        try:
            if state.step:  # finish the interrupted epoch with the steps it had left
                fit(state.epoch + 1, max(steps - state.step, 1))
            if not _finished(config, state):
                fit(config.train.epochs, steps)
        except Interrupted:
            raise TrainingStopped(run_dir, state) from None
        finally:
            progress.on_train_end()  # clear the bars, so an error message starts on a line of its own


def _for_worker(config: Config, role) -> Config:
    """The config this worker trains: a worker other than the chief writes to a scratch folder of its own."""
    run_dir = worker_run_dir(role, config.run_dir)
    if run_dir == config.run_dir:
        return config
    log.info(f"{role.task_type} {role.task_index} of {role.workers}: the chief writes {config.run_dir}; "
             f"this worker's copy goes to {run_dir}")
    return dataclasses.replace(config, train=dataclasses.replace(config.train, run_dir=str(run_dir)))


def _start_or_resume(config: Config, run_dir: Path, mode: str) -> TrainingState | None:
    """Say which of start or resume happens, and check that a resumed run's config still fits it."""
    has_run = (run_dir / CONFIG).is_file()
    if mode == "restart" and has_run:
        for name in RUN_FILES:
            path = run_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        log.info(f"Starting over in {run_dir} (--restart): the previous run there was removed")
        return None
    state = TrainingState.load(run_dir) if has_run else None
    if state is None:
        if mode == "resume":
            raise CheckpointError(f"{run_dir} has no training state to resume; drop --resume to start a new run")
        log.info(f"Starting a new run in {run_dir}")
        return None
    changes, allowed = config_changes(load_saved_config(run_dir), config)
    if changes:
        raise CheckpointError(f"cannot resume {run_dir}: the config differs in {', '.join(changes)}; "
                              "keep the old values or pass --restart to start over")
    log.info(f"Resuming {run_dir} from epoch {state.epoch + 1}, step {state.step} "
             f"(global step {state.global_step})" + (f"; changed: {', '.join(allowed)}" if allowed else ""))
    return state


def _finished(config: Config, state: TrainingState) -> bool:
    patience = config.train.early_stopping_patience
    stopped = state.stopped_early and patience is not None and state.wait >= patience
    return state.step == 0 and (state.epoch >= config.train.epochs or stopped or _out_of_time(config, state))


def _out_of_time(config: Config, state: TrainingState) -> bool:
    """train.max_minutes counts the time of every session of the run: a resumed run gets what is left."""
    minutes = config.train.max_minutes
    return minutes is not None and state.spent_seconds >= minutes * 60.0


def _tokens(config: Config, run_dir: Path, resuming: bool):
    """The tokenizer and token arrays: from the run's cache when it is current, else from the corpus."""
    cached = load_token_cache(run_dir, config.data)
    if cached is not None:
        log.info(f"using the tokenized corpus cached in {run_dir / TOKENS}")
        return cached
    if resuming:
        raise CheckpointError(f"cannot resume {run_dir}: the corpus files changed since the run started "
                              "(or its token cache is gone); pass --restart to start over")
    return tokenize_corpus(config.data)


@contextlib.contextmanager
def _stop_on_signals(writer):
    """First Ctrl-C or SIGTERM: finish the batch, save a resumable state, stop. A second Ctrl-C: stop now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        if writer.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        writer.stop_requested = True
        log.info("\nstopping after this batch to save a resumable state (Ctrl-C again to stop at once)")

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _progress_bar():
    from tqdm.keras import TqdmCallback

    return TqdmCallback(verbose=1, leave=False)
