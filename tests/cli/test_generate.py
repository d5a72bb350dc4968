"""lstm-textgen generate: a run it cannot read, settings out of range, reproducible samples that stream the seed,
and unknown seed words named on stderr."""
import shutil

import pytest

from helpers import assert_one_line_error, invoke


@pytest.mark.parametrize("make_run, fragment", [
    (lambda d: d / "nowhere", "does not exist"),
    (lambda d: d, "is not an lstm-textgen run directory"),
])
def test_generate_and_evaluate_need_a_run(tmp_path, tiny_corpus, make_run, fragment):
    run = make_run(tmp_path)
    assert_one_line_error(invoke("generate", "--run", run, "--seed", "the"), fragment)
    assert_one_line_error(invoke("evaluate", "--run", run, tiny_corpus), fragment)


@pytest.mark.parametrize("args, fragment", [
    (["--temperature", "-1"], "--temperature must be >= 0"),
    (["--top-p", "0"], "--top-p must be in (0, 1]"),
    (["--top-p", "1.5"], "--top-p must be in (0, 1]"),
    (["-n", "-1"], "must be >= 0"),
])
def test_generate_setting_errors(tiny_run, args, fragment):
    assert_one_line_error(invoke("generate", "--run", tiny_run, "--seed", "the cat", *args), fragment)


def test_missing_model_keras_is_named(tiny_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    (run / "model.keras").unlink()
    assert_one_line_error(invoke("generate", "--run", run, "--seed", "the"), "model.keras is missing",
                          f"cp {run / 'checkpoints' / 'epoch_002.keras'} {run / 'model.keras'}")


def test_generate_is_reproducible_and_streams_the_seed(tiny_run):
    first = invoke("generate", "--run", tiny_run, "--seed", "the cat", "-n", "15", "--random-seed", "5")
    again = invoke("generate", "--run", tiny_run, "--seed", "the cat", "-n", "15", "--random-seed", "5")
    assert first.exit_code == 0 and first.output == again.output
    assert first.output.startswith("the cat")
    assert "<unk>" not in first.output and "<pad>" not in first.output


def test_unknown_seed_words_are_named_on_stderr(tiny_run):
    result = invoke("generate", "--run", tiny_run, "--seed", "the zebra cat", "-n", "3", "--random-seed", "1")
    assert result.exit_code == 0
    assert "not in the vocabulary, fed as <unk>: zebra" in result.stderr
