"""Run directories written by lstm-textgen 0.1 (tests/fixtures) keep loading, generating the same text and
resuming to the same history; they are recognised by their files and marked when they train again."""
import csv
import json
import shutil

import pytest
from click.testing import CliRunner

from lstm_textgen import generate, load_run
from lstm_textgen.cli import cli
from lstm_textgen.run.files import MARKER, folder_kind

from conftest import REPO

FIXTURES = REPO / "tests" / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected_v0_1.json").read_text())
RUNS = sorted(EXPECTED)


@pytest.fixture
def old_run(request, tmp_path):
    """A copy of a 0.1 run beside a copy of its corpus (its config.yaml names corpus.txt, relative)."""
    shutil.copy2(FIXTURES / "corpus.txt", tmp_path / "corpus.txt")
    run = tmp_path / request.param
    shutil.copytree(FIXTURES / request.param, run)
    return run


@pytest.mark.parametrize("old_run", RUNS, indirect=True)
def test_a_0_1_run_generates_the_same_text(old_run):
    assert folder_kind(old_run) == "run" and not (old_run / MARKER).exists()
    run = load_run(old_run)
    for seed, text in EXPECTED[old_run.name]["samples"].items():
        assert generate(run, seed, length=12, temperature=0.9, random_seed=5) == text
    assert not (old_run / MARKER).exists()  # reading a run writes nothing into it


@pytest.mark.slow
@pytest.mark.parametrize("old_run", RUNS, indirect=True)
def test_a_0_1_run_resumes_to_the_same_history_and_is_marked(old_run):
    """`train --run DIR` continues the run with its own saved settings; the copy's token cache names the
    corpus where 0.1 found it, so the corpus is read again and found to be the same text."""
    result = CliRunner().invoke(cli, ["train", "--run", old_run.name, "--set", "train.epochs=2"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.stderr and "token cache" in result.stderr
    with open(old_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    expected = EXPECTED[old_run.name]
    assert [float(r["loss"]) for r in rows] == pytest.approx(expected["resumed_loss"], rel=1e-5)
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(expected["resumed_val_loss"], rel=1e-5)
    assert json.loads((old_run / MARKER).read_text())["lstm_textgen_run"] == 1
    info = CliRunner().invoke(cli, ["info", "--run", old_run.name, "--json"], catch_exceptions=False)
    assert json.loads(info.stdout)["epochs"] == 2
