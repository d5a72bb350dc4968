"""lstm-textgen evaluate (plot, info and runs are tested with outputs, show and report): the report as text and
as JSON, out-of-vocabulary words counted."""
import json

import pytest

from helpers import invoke


def test_evaluate_reports_and_json(tiny_run, tiny_corpus):
    text = invoke("evaluate", "--run", tiny_run, tiny_corpus)
    assert text.exit_code == 0, text.output
    for label in ("perplexity", "top-1 accuracy", "top-5 accuracy", "OOV rate", "unigram perplexity"):
        assert label in text.output
    report = json.loads(invoke("evaluate", "--run", tiny_run, tiny_corpus, "--json").stdout)
    assert 1 < report["perplexity"] < report["unigram_perplexity"] * 10
    assert 0 <= report["top1_accuracy"] <= report["top5_accuracy"] <= 1
    assert report["oov_rate"] == 0.0


def test_evaluate_counts_oov(tiny_run, tmp_path):
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("the zebra sat on the mat . " * 10)
    report = json.loads(invoke("evaluate", "--run", tiny_run, held_out, "--json").stdout)
    assert report["oov_rate"] == pytest.approx(10 / 70)
