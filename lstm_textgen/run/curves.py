"""history.csv read back, and the loss and perplexity curves drawn from it: curves.png and `plot`."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from lstm_textgen.errors import CheckpointError, TextgenError
from lstm_textgen.outputs import check_target, metadata
from lstm_textgen.run.files import CURVES, HISTORY
from lstm_textgen.run.rundir import check_is_run, has_trained
from lstm_textgen.config.values import shown


REQUIRED_COLUMNS = ("epoch", "loss", "val_loss", "val_perplexity")  # what plot and info read
FIGURE_KINDS = ("png", "svg", "pdf")  # the kinds whose metadata carries the stamp (outputs.py)


def read_history(run_dir: Path) -> dict[str, list[float]]:
    """history.csv as columns of floats (an empty or infinite value is nan); {} while no epoch has ended.
    Missing from a run that has trained, cut short or holding anything but one numbered row per epoch: a
    CheckpointError naming it and what to do."""
    path = Path(run_dir) / HISTORY
    if not path.exists() and not path.is_symlink() and not has_trained(run_dir):
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
        rows = list(csv.DictReader(io.StringIO(text)))
        problem = _history_problem(text, rows)
    except FileNotFoundError:
        problem = "it is missing" + (" (a link to a file that is gone)" if path.is_symlink() else "")
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        problem = f"it is unreadable ({type(e).__name__})"
    if problem:
        raise CheckpointError(f"{path} is damaged: {problem}; copy it back from a backup of the run (training "
                              "writes it anew after each epoch)")
    columns: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.items():
            columns.setdefault(name, []).append(_number(value))
    return columns


def _history_problem(text: str, rows: list[dict]) -> str | None:
    """What is wrong with history.csv's text as read into rows, or None."""
    if not text.strip():
        return "it is empty"
    if not text.endswith("\n"):
        return "its last line is cut short"
    header = list(rows[0]) if rows else text.splitlines()[0].split(",")
    lacking = [name for name in REQUIRED_COLUMNS if name not in header]
    if lacking:
        return f"it has no {', '.join(lacking)} column"
    for number, row in enumerate(rows, 1):
        if None in row or None in row.values():
            return f"row {number} has {'more' if None in row else 'fewer'} fields than the header"
        if row["epoch"] != str(number):
            return f"row {number} is epoch {shown(row['epoch'])}, not {number}"
        bad = next((name for name, value in row.items() if value and not _is_float(value)), None)
        if bad is not None:
            return f"row {number} has {bad} {shown(row[bad])}, not a number"
    return None


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _number(value: str) -> float:
    number = float(value) if value else math.nan
    return number if math.isfinite(number) else math.nan


def best_epoch(history: dict[str, list[float]]) -> int | None:
    """The first epoch with the lowest val_loss (as RunWriter picks model.keras), or None."""
    pairs = [(loss, epoch) for epoch, loss in zip(history.get("epoch", []), history.get("val_loss", []))
             if not math.isnan(loss)]
    return int(min(pairs)[1]) if pairs else None


def plot_runs(run_dirs: list[Path], out_path: Path, labels: list[str] | None = None, force: bool = False) -> None:
    """Draw train/val loss and val perplexity per epoch of each run, best epochs starred, into out_path.

    A run's own curves.png is redrawn freely; any other existing out_path only if lstm-textgen wrote it (the
    figure's metadata says so), or with force.
    """
    runs = [Path(d) for d in run_dirs]
    out_path = Path(out_path)
    kind = out_path.suffix.lstrip(".").lower()
    if kind not in FIGURE_KINDS and not out_path.is_dir():
        raise TextgenError(f"cannot write a .{kind or '(no suffix)'} figure: {out_path}; "
                           "use a name ending in .png, .svg or .pdf")
    histories = []
    for run_dir in runs:
        check_is_run(run_dir)
        history = read_history(run_dir)
        if not history.get("epoch"):
            raise CheckpointError(f"{run_dir} has no finished epoch yet ({HISTORY} is missing or empty); "
                                  "plot it after its first epoch")
        histories.append(history)
    own = any(out_path.resolve() == (run_dir / CURVES).resolve() for run_dir in runs)  # a run's, by its name
    check_target(out_path, force or own)
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # non-interactive; no pyplot, no global state

    fig = draw_curves(histories, labels or [str(d) for d in runs])
    FigureCanvasAgg(fig)
    from lstm_textgen.atomic import replacing

    try:
        with replacing(out_path, suffix=out_path.suffix) as tmp:
            fig.savefig(tmp, format=kind, dpi=100, metadata=metadata(out_path))
    except OSError as e:  # a folder that cannot be written, a full disk
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(out_path) else ""
        raise TextgenError(f"cannot write {out_path}: {e.strerror or e}{where}; choose another -o") from None


def draw_curves(histories: list[dict[str, list[float]]], labels: list[str]):
    """A matplotlib Figure: loss (left) and val perplexity (right) per epoch, one colour per run.

    Each metric line carries its metric as gid ("loss", "val_loss", "val_perplexity"), in run order.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    loss_ax, ppl_ax = fig.subplots(1, 2)
    several = len(histories) > 1
    for i, (label, history) in enumerate(zip(labels, histories)):
        epochs, tag, colour = history["epoch"], (label if several else ""), f"C{i % 10}"
        loss_ax.plot(epochs, history["loss"], "--", color=colour, marker=".", gid="loss",
                     label=f"{tag} train".strip())
        loss_ax.plot(epochs, history["val_loss"], "-", color=colour, marker=".", gid="val_loss",
                     label=f"{tag} validation".strip())
        ppl_ax.plot(epochs, history["val_perplexity"], "-", color=colour, marker=".", gid="val_perplexity",
                    label=label if several else "validation")
        best = best_epoch(history)
        if best is not None:
            at = epochs.index(best)
            star = {"marker": "*", "markersize": 14, "color": colour, "markeredgecolor": "black", "zorder": 3}
            loss_ax.plot([best], [history["val_loss"][at]], linestyle="none", **star)
            ppl_ax.plot([best], [history["val_perplexity"][at]], linestyle="none", **star,
                        label=f"best: epoch {best}, {history['val_perplexity'][at]:,.1f}")
    loss_ax.set(title="loss (dashed: train, solid: validation)", xlabel="epoch", ylabel="cross-entropy")
    ppl_ax.set(title="validation perplexity (lower is better)", xlabel="epoch", ylabel="perplexity")
    perplexities = [v for h in histories for v in h["val_perplexity"] if v > 0]  # nan > 0 is False
    if perplexities and max(perplexities) > 10 * min(perplexities):  # early epochs dwarf the rest
        from matplotlib.ticker import FuncFormatter

        ppl_ax.set_yscale("log")
        ppl_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    for ax in (loss_ax, ppl_ax):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    if not several:
        fig.suptitle(labels[0])
    return fig
