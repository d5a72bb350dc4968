"""lstm-textgen evaluate (plot, info and runs are tested with outputs, show and report): the report as text and
as JSON, out-of-vocabulary words counted; lstm-textgen inspect: the page, JSON lines, --find, TEXT as a string, a
file or standard input, and each mistake in one line."""
import json

import pytest

from lstm_textgen.generation import inspect as inside
from lstm_textgen.outputs import written_here

from conftest import TINY_TEXT
from helpers import assert_one_line_error, invoke


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


def test_inspect_writes_its_page_prints_json_lines_and_finds_units(tiny_run, tmp_path):
    page = invoke("inspect", "--run", tiny_run, "the cat sat on the mat")  # the default page: ./inspect.html
    assert page.exit_code == 0 and "Wrote inspect.html (6 tokens)" in page.output, page.output
    assert written_here(tmp_path / "inspect.html")
    lines = invoke("inspect", "--run", tiny_run, "the cat sat", "--json", "--layer", "1", "--units", "0-2,5")
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [r["token"] for r in records] == ["the", " cat", " sat"]
    assert all(len(values) == 4 for values in records[0]["layers"][0].values())  # units 0, 1, 2 and 5
    table = invoke("inspect", "--run", tiny_run, TINY_TEXT[:300], "--find", "line_position", "--top", "3")
    assert table.exit_code == 0 and "units following 'line_position'" in table.output
    assert len([line for line in table.output.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))]) == 3
    found = json.loads(invoke("inspect", "--run", tiny_run, TINY_TEXT[:300], "--find", "[ao]t", "--json",
                              "--part", "hidden").stdout)
    assert found["feature"] == "[ao]t" and found["part"] == "hidden" and len(found["units"]) == 8
    assert [abs(u["correlation"]) for u in found["units"]] == sorted((abs(u["correlation"]) for u in found["units"]),
                                                                     reverse=True)


def test_inspect_reads_a_file_or_standard_input(tiny_run, tmp_path):
    text_file = tmp_path / "text.txt"
    text_file.write_text("the dog sat\n", encoding="utf-8")
    from_file = invoke("inspect", "--run", tiny_run, text_file, "--json")
    from_stdin = invoke("inspect", "--run", tiny_run, "-", "--json", input="the dog sat\n")
    assert from_file.stdout == from_stdin.stdout and len(from_file.stdout.splitlines()) == 4  # with the line end


@pytest.mark.parametrize("args, says", [
    (["", "--json"], "TEXT is empty"),
    (["the cat", "--layer", "2"], "--layer 2 does not exist: this model has 1 recurrent layer (1 to 1)"),
    (["the cat", "--units", "99"], "--units 99 does not exist: layer 1 has 8 units (0 to 7)"),
    (["the cat", "--units", "3-x"], "--units '3-x' is not a list of unit numbers and ranges"),
    (["the cat", "--find", "(unclosed"], "--find '(unclosed' is neither a built-in feature"),
    (["the cat", "--find", "quotes", "--part", "gills"], "--part gills is not recorded for lstm_1"),
    (["the cat", "-o", "inside.txt"], "cannot write a page to inside.txt; use a name ending in .html"),
])
def test_each_mistake_is_one_error_line(tiny_run, args, says):
    assert_one_line_error(invoke("inspect", "--run", tiny_run, *args), says)


def test_a_text_over_the_bound_is_refused_before_it_is_read(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(inside, "MAX_TOKENS", 10)
    assert_one_line_error(invoke("inspect", "--run", tiny_run, "the cat sat on the mat " * 3, "--json"),
                          "TEXT has 18 tokens; inspect reads at most 10")
    long_file = tmp_path / "long.txt"
    long_file.write_text("the " * (inside.MAX_CHARS // 4 + 1), encoding="utf-8")
    assert_one_line_error(invoke("inspect", "--run", tiny_run, long_file, "--json"), "characters; inspect reads at most")


def test_a_file_of_invalid_bytes_and_a_bidirectional_model_are_refused(tiny_run, bidirectional_run, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat \xff sat")
    assert_one_line_error(invoke("inspect", "--run", tiny_run, bad, "--json"), "bad.txt")
    assert_one_line_error(invoke("inspect", "--run", bidirectional_run, "the cat", "--json"),
                          "this run's model is bidirectional")


def test_a_page_of_someone_elses_is_not_replaced_without_force(tiny_run, tmp_path):
    mine = tmp_path / "notes.html"
    mine.write_text("<p>my notes</p>")
    assert_one_line_error(invoke("inspect", "--run", tiny_run, "the cat", "-o", mine), "notes.html exists and "
                          "lstm-textgen did not write it")
    assert mine.read_text() == "<p>my notes</p>"
    assert invoke("inspect", "--run", tiny_run, "the cat", "-o", mine, "--force").exit_code == 0
    assert written_here(mine) and invoke("inspect", "--run", tiny_run, "the dog", "-o", mine).exit_code == 0


def test_part_without_find_is_a_usage_error(tiny_run):
    result = invoke("inspect", "--run", tiny_run, "the cat", "--part", "cell")
    assert result.exit_code == 2 and "--part says what --find correlates" in result.output
