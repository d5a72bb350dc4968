"""The writing page in headless Chromium against the real server: type a phrase, see the model's next words,
Tab takes the first (or completes the word being typed), Continue streams a continuation into the text.

The browser is the system's Chromium (Debian's `chromium` package; CI's .ci/run installs it), driven by the
playwright package; nothing is downloaded. Without that browser the test skips and says so.
"""
from __future__ import annotations

import shutil

import pytest

from lstm_textgen.generation.interactive import suggest

from helpers import running_server


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # --no-sandbox: CI runs as root

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH: apt-get install chromium "
                                                          "(.ci/run does) to run the page test")]


@pytest.fixture
def page(tiny_run, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: pip install -e '.[test]'")
    with running_server([tiny_run]) as (url, _), sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#model option[value=run]", state="attached")
            yield page
        finally:
            browser.close()


def suggestions(page) -> list[str]:
    page.wait_for_selector("#suggestions li")
    return [text.split("\n")[0] for text in page.locator("#suggestions li").evaluate_all(
        "items => items.map(i => i.firstChild.textContent)")]


def test_type_see_suggestions_take_one_with_tab_and_continue(page, run, tmp_path):
    area = page.locator("#text")
    area.click()
    area.press_sequentially("the cat sat on ")
    expected = [word for word, _ in suggest(run, "the cat sat on ", 8)]
    page.wait_for_function("n => document.querySelectorAll('#suggestions li').length === n", arg=len(expected))
    assert suggestions(page) == expected
    area.press("Tab")
    written = area.input_value()
    assert written == "the cat sat on " + expected[0] or written == "the cat sat on" + expected[0]
    page.eval_on_selector("#length", "e => { e.value = 10; e.dispatchEvent(new Event('input')); }")
    page.eval_on_selector("#temperature", "e => { e.value = 1.2; e.dispatchEvent(new Event('input')); }")
    assert page.locator("#length-value").inner_text() == "10"
    page.click("#continue")
    page.wait_for_function("document.querySelector('#status').textContent === 'done'")
    continued = area.input_value()
    assert continued.startswith(written) and len(continued.split()) > len(written.split())
    page.screenshot(path=str(tmp_path / "page.png"))


def test_tab_completes_the_word_being_typed(page):
    area = page.locator("#text")
    area.click()
    area.press_sequentially("the ca")
    page.wait_for_function("document.querySelector('#suggestions li')?.firstChild.textContent === 'cat'")
    area.press("Tab")
    assert area.input_value() == "the cat"
