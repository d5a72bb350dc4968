"""The inspection page (pages.py, inspect.html) in headless Chromium: written by `lstm-textgen inspect` and opened
from disk, and served at /inspect where a typed text is read through POST /v1/inspect. Its tokens are coloured
by the chosen unit, moving between tokens from the keyboard shows their gates, states and predictions, find units
ranks the units as the command's --find does (built-in features and a regular expression), a result colours the
text by its unit, and each layer's gates get a saturation chart. At every level.

The browser is the system's Chromium, as in test_page.py; without it the browser tests skip and say so.
"""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.generation.inspect import FEATURES, find_units, inspect
from lstm_textgen.outputs import written_here
from lstm_textgen.run.rundir import load_run
from lstm_textgen.serve.pages import inspect_page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TEXT = 'the cat ( sat ) on the "mat" .\na dog and a cat , the best of friends , sat by the fire .\n' * 4
with_browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH: apt-get install chromium (.ci/run "
                                                           "does)")


@pytest.fixture
def browser(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: pip install -e '.[test]'")
    with sync_api.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                            headless=True, args=ARGS)
        try:
            yield context
        finally:
            context.close()


def write_page(run_dir, tmp_path, text=TEXT, *extra) -> str:
    target = tmp_path / "inside.html"
    result = CliRunner().invoke(cli, ["inspect", "--run", str(run_dir), text, "-o", str(target), *extra])
    assert result.exit_code == 0, result.output
    return target


def open_page(browser, url: str):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("#text span")
    return page, errors


def test_the_page_carries_its_data_and_the_programs_stamp(tiny_run, tmp_path):
    target = write_page(tiny_run, tmp_path)
    html = target.read_text(encoding="utf-8")
    assert written_here(target) and "https://" not in html.split("<script")[1]  # no CDN: nothing fetched
    assert inspect_page().count("/*DATA*/") == 1 and "/*DATA*/" not in html
    hostile = inspect(load_run(tiny_run), "the cat </script><!-- sat")
    page = inspect_page({"model": "x", "tokens": hostile.tokens})
    assert "</script><!--" not in page.split('<script id="data"')[1].split("</script>")[0]


@pytest.mark.slow
@pytest.mark.parametrize("level", ["word", "whitespace", "char", "bpe"])
@with_browser
def test_find_units_on_the_page_ranks_as_the_command_does(browser, level_runs, tmp_path, level):
    run_dir = level_runs[level]
    target = write_page(run_dir, tmp_path)
    page, errors = open_page(browser, target.as_uri())
    reading = inspect(load_run(run_dir), TEXT)
    assert page.locator("#text span").count() == len(reading.tokens)
    assert page.locator("#text").text_content() == reading.text
    for feature in [*FEATURES, "[a-z]at"]:
        expected = {(row["layer"], row["unit"]): row["correlation"] for row in find_units(reading, feature, top=10**6)}
        if feature in FEATURES:
            page.select_option("#feature", feature)
            page.fill("#regex", "")
        else:
            page.fill("#regex", feature)
        page.click("#find")
        found = page.locator("#found button").all_inner_texts()
        assert len(found) == min(10, len(expected)), feature
        for text in found:  # "lstm_1 unit 3: r = 0.123", each unit's r the command's to within its data's rounding
            layer, rest = text.split(" unit ")
            unit, r = rest.split(": r = ")
            assert float(r) == pytest.approx(expected[(layer, int(unit))], abs=0.02), (feature, text)
        strongest = max(abs(r) for r in expected.values())
        assert abs(float(found[0].split("r = ")[1])) == pytest.approx(strongest, abs=0.02), feature
    page.locator("#found button").first.click()
    assert page.input_value("#unit") == page.locator("#found button").first.inner_text().split(" unit ")[1].split(":")[0]
    assert not errors


@pytest.mark.slow
@with_browser
def test_the_keyboard_reaches_every_token_and_the_panel_shows_it(browser, tiny_run, tmp_path):
    target = write_page(tiny_run, tmp_path)
    page, errors = open_page(browser, target.as_uri())
    reading = inspect(load_run(tiny_run), TEXT)
    page.focus("#text")
    page.keyboard.press("ArrowRight")  # the first token
    page.keyboard.press("ArrowRight")
    details = page.locator("#details").inner_text()
    assert "token 1" in details and "input gate" in details and "forget gate" in details and "cell" in details
    assert f"{reading.top_probs[1][0]:.3f}" in details  # the likeliest next token's probability
    assert f"{reading.surprisal[1]:.2f} bits" in details
    before = page.locator("#text span").nth(0).evaluate("s => s.style.backgroundColor")
    page.fill("#unit", "3")
    page.dispatch_event("#unit", "change")
    assert page.locator("#text span").nth(0).evaluate("s => s.style.backgroundColor") != before or \
        reading.layers[0].parts["cell"][0, 0] == reading.layers[0].parts["cell"][0, 3]
    page.select_option("#part", "forget_gate")
    assert "0 (none) to 1 (full)" in page.inner_text("#legend")
    page.focus("#text")
    page.keyboard.press("End")
    assert f"token {len(reading.tokens) - 1}" in page.locator("#details").inner_text()
    charts = page.locator("#charts figure")
    assert charts.count() == 3  # the input, forget and output gates of the run's one layer
    assert charts.first.locator("circle").count() == len(reading.layers[0].units)
    page.fill("#regex", "(unclosed")
    page.click("#find")
    assert "does not compile" in page.inner_text("#status")
    assert not errors


@pytest.mark.slow
@with_browser
def test_the_served_page_reads_a_typed_text(browser, server):
    page = browser.new_page()
    page.goto(server[0] + "/inspect")
    page.wait_for_selector("#model option[value=run]", state="attached")
    page.fill("#input", "the cat sat on the mat")
    page.click("#run")
    page.wait_for_selector("#text span")
    assert page.locator("#text span").count() == 6
    page.fill("#input", "")
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').className === 'error'")
    assert "empty" in page.inner_text("#status")


def test_v1_inspect_gives_the_pages_data_and_refuses_what_it_cannot_read(http, run):
    reply = http.post("/v1/inspect", json={"model": "run", "text": "the cat sat", "layer": 1, "units": [0, 2]})
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["tokens"] == ["the", " cat", " sat"] and data["layers"][0]["units"] == [0, 2]
    assert set(data["layers"][0]["parts"]) == {"input_gate", "forget_gate", "output_gate", "candidate", "cell", "hidden"}
    for body, param in [({"text": ""}, "text"), ({"text": 7}, "text"), ({"text": "the", "layer": 2}, "layer"),
                        ({"text": "the", "units": [99]}, "units"), ({"text": "the", "units": "all"}, "units"),
                        ({"text": "the" * 5000}, "text"), ({"text": "the", "unit": [1]}, "unit"),
                        ({"text": "the \ud800"}, "text")]:
        refused = http.post("/v1/inspect", content=json.dumps({"model": "run", **body}),
                            headers={"Content-Type": "application/json"})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param, (body, refused.text)
    assert http.post("/v1/inspect", json={"model": "nope", "text": "the"}).status_code == 404
    assert http.get("/inspect").status_code == 200
