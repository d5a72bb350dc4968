"""The run directory's files: every name the program writes there (made or listed here, and only these are ever
removed), the marker that makes a folder a run, where a run may sit (never where its corpus is read), and the
plain writes and reads of its JSON files and models, each atomic."""
from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path

from lstm_textgen import __version__, atomic
from lstm_textgen.atomic import remove_temporaries, replacing, write_text
from lstm_textgen.config import META_KEY
from lstm_textgen.config.values import read_yaml
from lstm_textgen.errors import CheckpointError, TextgenError
from lstm_textgen.text.cache import CACHE_FILES
from lstm_textgen.text.corpus import corpus_reads, find_files


MARKER = "lstm-textgen-run.json"  # written first into every run directory: what makes a folder a run


CONFIG, TOKENIZER, MODEL = "config.yaml", "tokenizer.json", "model.keras"


HISTORY, METRICS, CHECKPOINTS, TOKENS = "history.csv", "metrics.json", "checkpoints", "tokens"


SAMPLES, CURVES, TENSORBOARD = "samples.txt", "curves.png", "tensorboard"  # written by monitor.py


LOCK = ".lstm-textgen-lock"  # held while a training runs in the directory (run/lock.py)


STATE = "state.json"  # under checkpoints/: where training stands; written last, so it is the commit point


# Every name the program writes in a run directory is made here or listed here, and only these are ever removed
# (by exact name: a person's file anywhere in the folder stays, whatever it is called). TensorBoard names its own
# event files: the training state records each one it starts (TrainingState.logs).
RUN_FILES = (MARKER, CONFIG, TOKENIZER, MODEL, HISTORY, METRICS, SAMPLES, CURVES, LOCK)


_EPOCH, _STATE_WEIGHTS = re.compile(r"epoch_(\d+)\.keras"), re.compile(r"state_(\d+)\.weights\.h5")


def epoch_checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}.keras"


def epoch_checkpoint(run_dir: Path, epoch: int) -> Path:
    """checkpoints/epoch_NNN.keras: the plain model as it stood at the end of that epoch."""
    return Path(run_dir) / CHECKPOINTS / epoch_checkpoint_name(epoch)


def state_weights_name(global_step: int) -> str:
    """The name (under checkpoints/) of the weights file saved at a global step."""
    return f"state_{global_step:09d}.weights.h5"


def _made_by(pattern: re.Pattern, make, name: str) -> bool:
    """Whether name is one that make(number) gives: state_000000200.weights.h5, never state_old.weights.h5."""
    match = pattern.fullmatch(name)
    return match is not None and make(int(match.group(1))) == name


def is_epoch_checkpoint(name: str) -> bool:
    return _made_by(_EPOCH, epoch_checkpoint_name, name)


def is_state_weights(name: str) -> bool:
    return _made_by(_STATE_WEIGHTS, state_weights_name, name)


def epoch_checkpoints(run_dir: Path) -> list[Path]:
    """The epoch checkpoints present (files of our names only), oldest first."""
    folder = Path(run_dir) / CHECKPOINTS
    found = [p for p in folder.iterdir() if is_epoch_checkpoint(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(_EPOCH.fullmatch(p.name).group(1)))


def is_ours(folder: str, name: str) -> bool:
    """Whether the program writes a file of this name in this folder of a run ("" = the run directory itself)."""
    if folder == "":
        return name in RUN_FILES
    if folder == CHECKPOINTS:
        return name == STATE or is_epoch_checkpoint(name) or is_state_weights(name)
    return folder == TOKENS and name in CACHE_FILES


def token_file(run_dir: Path, split: str) -> Path:
    """tokens/train.npy or tokens/val.npy: the tokenized corpus, memory-mappable."""
    return Path(run_dir) / TOKENS / f"{split}.npy"


# --- what a folder is ----------------------------------------------------------------------------------
def folder_kind(folder: Path) -> str:
    """'absent', 'file', 'empty', 'run' (it has our marker, or is a run written by 0.1) or 'other'."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return "absent"
    if not folder.is_dir():
        return "file"
    if (folder / MARKER).exists() or (folder / MARKER).is_symlink() or _legacy_run(folder):
        return "run"
    return "other" if any(folder.iterdir()) else "empty"


def _legacy_run(folder: Path) -> bool:
    """A run directory written by lstm-textgen 0.1 (no marker): its config.yaml and tokenizer.json both carry
    the stamps that release wrote into them."""
    try:
        config = read_yaml(folder / CONFIG, "run config")
        tokenizer = json.loads((folder / TOKENIZER).read_text(encoding="utf-8"))
    except (TextgenError, OSError, ValueError):
        return False
    meta = config.get(META_KEY)
    return isinstance(meta, dict) and "schema" in meta and isinstance(tokenizer, dict) and "schema" in tokenizer


def write_marker(run_dir: Path) -> None:
    """Mark the folder as a run: the first file a new run gets, and what later commands know it by."""
    write_text(run_dir / MARKER, json.dumps({"lstm_textgen_run": 1, "version": __version__,
                                             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")


def trained_files(run_dir: Path) -> list[str]:
    """The files that show a run has trained (finished an epoch), as names relative to it."""
    found = [name for name in (MODEL, HISTORY) if (run_dir / name).is_file()]
    return found + [f"{CHECKPOINTS}/{p.name}" for p in epoch_checkpoints(run_dir)]


def remove_run_files(run_dir: Path, logs: list[str] = ()) -> None:
    """Delete a run's own files, and only those: the names is_ours() accepts and the TensorBoard event files the
    run recorded (logs, relative to run_dir); a folder of ours goes only once it is empty. Anything else a person
    put there stays, wherever it is."""
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    for folder in (CHECKPOINTS, TOKENS):
        if (run_dir / folder).is_dir():
            for path in (run_dir / folder).iterdir():
                if is_ours(folder, path.name) and (path.is_file() or path.is_symlink()):
                    path.unlink()
    for name in logs:
        path = run_dir / name
        if Path(name).parts[:1] == (TENSORBOARD,) and ".." not in Path(name).parts and path.is_file():
            path.unlink()
    for folder in ("", CHECKPOINTS, TOKENS):
        sweep_temporaries(run_dir, folder)
    log_folders = sorted({Path(name).parent for name in logs}, key=lambda p: -len(p.parts))
    for folder in (CHECKPOINTS, TOKENS, *log_folders, TENSORBOARD):
        with contextlib.suppress(OSError):
            (run_dir / folder).rmdir()  # only when empty


def sweep_temporaries(run_dir: Path, folder: str = "") -> None:
    """Delete the temporary files a killed write left in one of a run's folders ("" = the run directory)."""
    if (run_dir / folder).is_dir():
        remove_temporaries(run_dir / folder, lambda name: is_ours(folder, name))


def prepare_run_dir(run_dir: Path, new: bool) -> None:
    """Make a new run's folder and mark it (new), or clear a run's leftover temporaries; or say why it cannot
    be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if new or not (run_dir / MARKER).is_file():  # a run of 0.1 is marked the first time it trains again
            write_marker(run_dir)
        (run_dir / CHECKPOINTS).mkdir(exist_ok=True)
        for folder in ("", CHECKPOINTS, TOKENS):
            sweep_temporaries(run_dir, folder)
    except OSError as e:
        where = f" (writing {e.filename})" if e.filename and Path(e.filename) != run_dir else ""
        raise CheckpointError(f"cannot write to run directory {run_dir}: {e.strerror or e}{where}; free some space "
                              "or choose a writable --run") from None


def check_outside_corpus(run_dir: Path, corpus: str, what: str = "corpus") -> None:
    """Refuse a run directory that the corpus would read back (its samples.txt is text), or that holds it;
    what names the corpus in the error (the validation corpus, data.val_corpus, is checked the same way)."""
    clash = corpus_reads(corpus, Path(run_dir) / SAMPLES)
    if clash:
        raise CheckpointError(f"run directory {run_dir} {clash}, so the run's own {SAMPLES} would become part of "
                              f"the {what}; choose a --run outside it")
    if Path(corpus).is_file() and Path(run_dir).resolve() in Path(corpus).resolve().parents:
        raise CheckpointError(f"the {what} {corpus} is inside the run directory {run_dir}; move it out, or "
                              "choose another --run")


def check_no_runs_read(spec: str, what: str = "corpus") -> None:
    """Refuse a folder or glob of text that would read a run directory's files (its samples.txt is text, and
    a run is the program's output, not a person's writing); a file named on its own is read as given."""
    if Path(spec).expanduser().is_file():
        return
    kinds: dict[Path, bool] = {}
    for path in find_files(spec, what):
        for folder in path.resolve().parents:
            if folder not in kinds:
                kinds[folder] = folder_kind(folder) == "run"
            if kinds[folder]:
                raise CheckpointError(f"{what} {spec} reads the run directory {folder} ({path.name} is one of its "
                                      "files); give a folder or glob of your own text, with no run inside it")


def save_model(model, path: Path) -> None:
    """model.save() to a temporary .keras name, then rename: a reader never sees half a file."""
    with replacing(path, suffix=".keras") as tmp:
        model.save(tmp)


def save_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path) -> dict:
    """A JSON object from a run's file, or a CheckpointError naming the file and what is wrong with it."""
    return atomic.read_json(path, CheckpointError)
