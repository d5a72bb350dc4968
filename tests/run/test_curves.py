"""history.csv read back, and the figure drawn from it: curves.png and `plot`."""
import shutil
import math

import pytest

from lstm_textgen.run.curves import best_epoch, draw_curves, plot_runs, read_history

from conftest import PNG_SIGNATURE
from helpers import assert_one_line_error, drawn_lines, invoke


def test_plot_draws_every_run_with_one_point_per_epoch(two_runs, tmp_path):
    a, b = two_runs
    out = tmp_path / "compare.png"
    plot_runs([a, b], out)
    curves = drawn_lines(draw_curves([read_history(a), read_history(b)], [str(a), str(b)]), [str(a), str(b)])
    points = {(c.run, c.metric): c.epochs for c in curves}
    for metric in ("loss", "val_loss", "val_perplexity"):
        assert points[(str(a), metric)] == [1.0, 2.0]
        assert points[(str(b), metric)] == [1.0, 2.0, 3.0]
    third = next(c for c in curves if c.run == str(b) and c.metric == "val_perplexity")
    assert third.values[-1] == pytest.approx(2.718281828459045)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    import matplotlib.image
    assert matplotlib.image.imread(out).shape[2] in (3, 4)


def test_best_epoch_is_the_first_lowest_val_loss():
    assert best_epoch({"epoch": [1, 2, 3, 4], "val_loss": [3.0, 2.0, float("nan"), 2.0]}) == 2
    assert best_epoch({"epoch": [1], "val_loss": [float("nan")]}) is None
    assert best_epoch({}) is None


def test_history_reads_missing_values_as_nan(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss,val_perplexity\n1,2.0,,inf\n")
    history = read_history(tmp_path)
    assert history["loss"] == [2.0]
    assert math.isnan(history["val_loss"][0]) and math.isnan(history["val_perplexity"][0])


def test_plot_command_compares_runs(two_runs, tmp_path):
    a, b = two_runs
    result = invoke("plot", "--run", a, b, "-o", tmp_path / "both.svg", catch_exceptions=False)
    assert result.exit_code == 0 and f"Wrote {tmp_path / 'both.svg'}" in result.output
    assert (tmp_path / "both.svg").read_text().lstrip().startswith("<?xml")
    result = invoke("plot", "--run", a, "--run", b, catch_exceptions=False)  # several: ./curves.png
    assert result.exit_code == 0 and (tmp_path / "curves.png").read_bytes()[:8] == PNG_SIGNATURE
    (a / "curves.png").unlink()
    result = invoke("plot", "--run", a, catch_exceptions=False)  # one: DIR/curves.png
    assert result.exit_code == 0 and (a / "curves.png").read_bytes()[:8] == PNG_SIGNATURE


def test_plot_errors(two_runs, tmp_path):
    a, _ = two_runs
    assert_one_line_error(invoke("plot", "--run", tmp_path), "is not an lstm-textgen run directory")
    assert_one_line_error(invoke("plot", "--run", a, "--run", tmp_path / "nope"), "nope does not exist")
    assert_one_line_error(invoke("plot", "--run", a / "config.yaml"), "is a file, not a run directory")
    assert_one_line_error(invoke("plot"), "give a run directory")
    assert_one_line_error(invoke("plot", "--run", a, "-o", tmp_path / "x.docx"), "cannot write a .docx figure")
    (a / "history.csv").unlink()  # from a run that has trained: lost
    assert_one_line_error(invoke("plot", "--run", a), "history.csv is damaged: it is missing")
    (a / "model.keras").unlink()
    shutil.rmtree(a / "checkpoints")  # as before its first epoch ended
    assert_one_line_error(invoke("plot", "--run", a), "has no finished epoch yet")
