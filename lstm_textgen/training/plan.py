"""Planning a run, in one place, before anything is written: the config a train command means, what may change
when a run resumes, what cannot start, and whether the run directory gets a new run, a resumed one, a restart,
a fine-tuned start from a base run, or nothing to do. train() follows the Plan; the run's lock is taken here."""
from __future__ import annotations

import contextlib
import filecmp
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lstm_textgen.config import SECTIONS, Config, load_config
from lstm_textgen.config.setting import declared, policy
from lstm_textgen.config.values import command, run_name, shown
from lstm_textgen.errors import CheckpointError, ConfigError, TextgenError
from lstm_textgen.run.curves import read_history
from lstm_textgen.run.lock import RunLock
from lstm_textgen.run.files import CHECKPOINTS, MODEL, STATE, TOKENS, epoch_checkpoint, folder_kind, trained_files
from lstm_textgen.training.data import kept
from lstm_textgen.run.rundir import load_saved_config, read_metrics, saved_config_values
from lstm_textgen.run.state import TrainingState, is_hdf5
from lstm_textgen.text.cache import MANIFEST
from lstm_textgen.text.corpus import find_files
from lstm_textgen.training.finetune import Base, base_settings
from lstm_textgen.training.resume import finished, out_of_time

log = logging.getLogger("lstm_textgen")


def training_config(path, overrides, values: dict, restart: bool = False) -> Config:
    """The config a train command means: defaults, file, --set and flags; for a run that exists (and is not
    being restarted), its own saved settings take the defaults' place, so `train --run DIR` continues it; for
    a new run with train.init_from (--from), the base run's settings do (finetune.base_settings)."""
    config = load_config(path, overrides, values)
    if not restart and folder_kind(config.run_dir) == "run":
        return load_config(path, overrides, values, base=saved_config_values(config.run_dir))
    if config.train.init_from:
        return load_config(path, overrides, values, base=base_settings(config.train.init_from))
    return config


def config_changes(old: Config, new: Config) -> tuple[list[str], list[str]]:
    """(refused, allowed) differences between a saved run config and a new one, as 'key (old -> new)'."""
    refused, allowed = [], []
    old_d, new_d = old.to_dict(), new.to_dict()
    for section, values in new_d.items():
        for key, value in values.items():
            before = old_d[section][key]
            if before != value and f"{section}.{key}" != "train.run_dir":  # a run may be moved or copied
                entry = f"{section}.{key} ({shown(before)} -> {shown(value)})"
                safe = policy(SECTIONS[section], key).resume  # declared on the setting (config/)
                (allowed if safe else refused).append(entry)
    return refused, allowed


def check_start(config: Config) -> None:
    """Refuse, before anything is read or written, what cannot start: fine-tuning keys without a base, frozen
    layers the model lacks (or all of them), a base that is the run directory."""
    train, data = config.train, config.data
    for needed, key in ((train.freeze, "train.freeze"), (data.base_vocab == "extend", "data.base_vocab=extend")):
        if needed and not train.init_from:
            raise ConfigError(f"{key} is about a base run's weights and vocabulary: it needs train.init_from "
                              "(train --from RUN)")
    layers = config.model.weighted_layers()
    unknown = [name for name in train.freeze if name not in layers]
    if unknown:
        raise ConfigError(f"train.freeze names {', '.join(shown(name) for name in unknown[:5])}, which the model "
                          f"does not have; its layers with weights are {', '.join(layers)}")
    if set(layers) <= set(train.freeze):
        raise ConfigError("train.freeze lists every layer with weights, so nothing would train; leave one out")
    if train.init_from:
        base, run_dir = Path(train.init_from).expanduser().resolve(), config.run_dir.resolve()
        if run_dir == base or base in run_dir.parents:
            raise CheckpointError(f"the run directory {config.run_dir} is the base run {train.init_from} (or inside "
                                  "it), which fine-tuning only reads; choose another --run")


@dataclass
class Plan:
    """What train() will do with the run directory; nothing is written until every input has been checked."""
    state: TrainingState | None  # the state to resume, or None for a new run
    new: bool = False  # the folder is made (or an empty one used) and marked as a run
    restart: bool = False  # the run's own files go first (--restart)
    done: str = ""  # why there is nothing to do, or ""
    base: Base | None = None  # a new fine-tuned run's base run, read (never written)
    saved: Config | None = None  # a resumed run's saved config (its `auto` values are kept)


def plan(config: Config, mode: str, lock: RunLock) -> Plan:
    """The Plan for config's run directory, with its lock taken if it holds a run (another training may be writing
    it); a new fine-tuned run's base is read and its settings checked against the new run's.

    mode: "auto" continues a run already in the directory (or starts one), "resume" insists on continuing,
    "restart" starts over (the run's own files are removed only once the whole command has checked out).
    """
    check_start(config)  # before the lock: a --run that is the base run must not get a lock file
    if folder_kind(config.run_dir) == "run":
        lock.acquire()  # before anything is read
    planned = plan_run(config, config.run_dir, mode)
    if config.train.init_from and planned.state is None and not planned.done:
        planned.base = start_from(config)
    return planned


def plan_run(config: Config, run_dir: Path, mode: str) -> Plan:
    """Decide between a new run, a resumed one, a restart and nothing to do; refuse a folder that is not ours."""
    kind = folder_kind(run_dir)
    if kind == "file":
        raise CheckpointError(f"run directory {run_dir} is a file; choose another --run")
    if kind == "other":
        names = ", ".join(sorted(p.name for p in run_dir.iterdir())[:3])
        raise CheckpointError(f"{run_dir} is not an lstm-textgen run directory and is not empty (it holds {names}, "
                              "...); train into a new or empty folder with --run (nothing was written)")
    if kind in ("absent", "empty") or mode == "restart":
        if mode == "resume":
            raise CheckpointError(f"{run_dir} has no run to resume; drop --resume to start a new run")
        log.info(f"Starting over in {run_dir} (--restart): the run's own files are removed once the corpus and "
                 "config check out" if kind == "run" else f"Starting a new run in {run_dir}")
        return Plan(None, new=kind != "run", restart=kind == "run")
    try:
        state = TrainingState.load(run_dir)
    except CheckpointError as e:
        return _without_state(config, run_dir, str(e))
    if state is None:
        if trained_files(run_dir):
            return _without_state(config, run_dir, f"its training state {run_dir / CHECKPOINTS / STATE} is missing")
        if mode == "resume":
            raise CheckpointError(f"{run_dir} has no training state to resume; drop --resume to start the run")
        log.info(f"Starting the run in {run_dir} (it has not trained yet)")
        return Plan(None)
    saved = load_saved_config(run_dir)
    changes, allowed = config_changes(saved, kept(config, saved))  # `auto` keeps what the run started with
    if changes:
        raise CheckpointError(f"cannot resume {run_dir}: the config differs in {', '.join(changes)}; keep the old "
                              "values, or train a new run with another --run")
    if finished(config.train, state):
        check_same_corpus(run_dir, saved.data.corpus, config.data.corpus)
        why = (" and spent train.max_minutes" if out_of_time(config.train, state)
               else " and stopped early" if state.patience.stopped_early else "")
        return Plan(state, done=f"{run_dir} has already trained {state.progress.epoch} epochs{why}; nothing to do "
                                "(raise --set train.epochs or train.max_minutes to train longer)")
    check_restorable(run_dir, state)
    log.info(f"Resuming {run_dir} from epoch {state.progress.epoch + 1}, step {state.progress.step} "
             f"(global step {state.progress.global_step})" + (f"; changed: {', '.join(allowed)}" if allowed else ""))
    return Plan(state, saved=saved)


def check_restorable(run_dir: Path, state: TrainingState) -> None:
    """Refuse, before anything is written, to continue a run that has finished an epoch when neither the weights
    its state names nor any epoch checkpoint can be read: it would start over, and overwrite its model.keras."""
    weights = run_dir / CHECKPOINTS / state.saved.weights if state.saved.weights else None
    if not state.progress.epoch or (weights is not None and is_hdf5(weights)):
        return
    if any(zipfile.is_zipfile(epoch_checkpoint(run_dir, epoch)) for epoch in range(state.progress.epoch, 0, -1)):
        return  # restore_state goes back to the newest that loads, and says so
    what = f"{weights} is missing or damaged" if weights is not None else "its state names no weights"
    raise CheckpointError(f"cannot continue {run_dir}: {what}, and no epoch checkpoint can be read, so its "
                          f"{state.progress.epoch} trained epochs would start over; its {MODEL} still generates: keep "
                          "it and train a new run with another --run, or pass --restart to delete it and start over")


def _without_state(config: Config, run_dir: Path, what: str) -> Plan:
    """A run that has trained but whose training state is gone: finished is nothing to do; else say so."""
    epochs = len(read_history(run_dir).get("epoch", []))
    if epochs >= config.train.epochs or read_metrics(run_dir).get("stopped_early") is True:
        check_same_corpus(run_dir, load_saved_config(run_dir).data.corpus, config.data.corpus)
        return Plan(None, done=f"{run_dir} has already trained {epochs} epochs; nothing to do")
    raise CheckpointError(f"{run_dir} has trained {epochs} epochs but {what}, so it cannot continue exactly where "
                          f"it stopped (its {MODEL} still generates); keep it and train a new run with another --run, "
                          "or pass --restart to delete it and start over")


def check_same_corpus(run_dir: Path, trained: str, given: str) -> None:
    """Refuse new text for a run that has finished: training would have nothing to do, and say so as if the text
    had been read. The same files (or copies of them, or the files moved, as its token cache recorded them) are
    the same text."""
    if given == trained:
        return
    files = find_files(given)
    with contextlib.suppress(TextgenError, OSError):
        before = find_files(trained)
        if len(before) == len(files) and all(a.resolve() == b.resolve() or filecmp.cmp(a, b, shallow=False)
                                             for a, b in zip(before, files)):
            return
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        recorded = json.loads((run_dir / TOKENS / MANIFEST).read_text(encoding="utf-8"))["corpus"]
        if [entry[1:] for entry in recorded] == [[p.stat().st_size, p.stat().st_mtime_ns] for p in files]:
            return
    tuned = Path(run_dir).parent / f"{Path(run_dir).name}-{run_name(given)}"
    raise CheckpointError(f"{run_dir} has finished training on {trained}, and {given} is other text: train does not "
                          "add text to a finished run; fine-tune it on the new text in a new run with: "
                          f"{command('lstm-textgen', 'train', given, '--from', run_dir, '--run', tuned)}, or leave "
                          "the corpus out to keep the run as it is")


def conflicts(base: Config, config: Config) -> list[str]:
    """The data:, embedding: and model: settings that differ from the base's but may not (declared finetune="base",
    or "extend" unless data.base_vocab=extend), as 'key (base -> new)'. The model's shape, its level and its
    tokenizer settings stay the base's; the corpus, the dropouts, how to treat the vocabulary may differ."""
    allowed = {"differs", "own", *(("extend",) if config.data.base_vocab == "extend" else ())}
    old, new = base.to_dict(), config.to_dict()
    return [f"{section}.{key} ({shown(old[section][key])} -> {shown(new[section][key])})"
            for section in ("data", "embedding", "model") for key, _, _, rule in declared(SECTIONS[section])
            if new[section][key] != old[section][key] and rule.finetune not in allowed]


def start_from(config: Config) -> Base:
    """The base run of a new fine-tuned run, read, with the settings the new run may not change checked."""
    base = Base(config.train.init_from)
    changed = conflicts(base.config, config)
    if changed:
        raise ConfigError(f"cannot fine-tune from {base.given}: the settings differ from the base run's in "
                          f"{', '.join(changed)}; the model's shape, level and tokenizer stay the base's (and, "
                          "unless data.base_vocab=extend, its max_vocab and min_count): drop those values")
    cap = config.data.max_vocab
    if cap is not None and cap < base.tokenizer.vocab_size:
        raise ConfigError(f"data.max_vocab={cap} is below the base run's vocabulary of "
                          f"{base.tokenizer.vocab_size:,} tokens, all of which extend keeps; set --set "
                          f"data.max_vocab={base.tokenizer.vocab_size} or more (null: no cap)")
    return base
