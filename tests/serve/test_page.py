"""The writing page in headless Chromium against the real server: type a phrase, see the model's next words,
take any of them from the keyboard (Tab, Alt+1-9, Alt+arrows and Enter; Escape hides them), Continue streams a
continuation in at the caret; spacing and case as generate writes them, an unreachable server shown and recovered
from, errors cleared by the next answer, status read out (aria-live), a dark theme that follows the system; the
model named and Continue enabled once it has loaded, the context its text's end cut in steps, bpe words completed
and control characters kept out. The web export's page is this page with another backend (tests/export/test_web.py).

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
    """The chips' labels, in order."""
    page.wait_for_selector("#suggestions li")
    return page.locator("#suggestions li .word").evaluate_all("items => items.map(i => i.textContent)")


def type_and_wait(page, text: str, expected: list[str]):
    """Type text into an empty page and wait for the suggestions the model gives after it."""
    area = page.locator("#text")
    area.click()
    area.press_sequentially(text)
    page.wait_for_function("n => document.querySelectorAll('#suggestions li').length === n", arg=len(expected))
    return area


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


@pytest.mark.parametrize("typed, completed", [("the ca", "the cat"), ("The Ca", "The Cat")])
def test_tab_completes_the_word_being_typed_keeping_the_writers_letters(page, typed, completed):
    area = page.locator("#text")
    area.click()
    area.press_sequentially(typed)
    page.wait_for_function("document.querySelector('#suggestions li .word')?.textContent === 'cat'")
    area.press("Tab")
    assert area.input_value() == completed


def test_a_sentence_start_is_capitalised(page, run):
    area = page.locator("#text")
    expected = [word for word, _ in suggest(run, "the cat sat on the mat . ", 8)]
    assert expected[0].isalpha()
    type_and_wait(page, "the cat sat on the mat. ", expected)
    area.press("Tab")
    assert area.input_value() == "the cat sat on the mat. " + expected[0].capitalize()


def test_every_suggestion_is_reachable_from_the_keyboard(page, run):
    expected = [word for word, _ in suggest(run, "the cat sat on ", 8)]
    assert len(expected) >= 3
    area = type_and_wait(page, "the cat sat on ", expected)
    area.press("Alt+2")
    assert area.input_value() in ("the cat sat on " + expected[1], "the cat sat on" + expected[1])
    area.fill("")
    type_and_wait(page, "the cat sat on ", expected)
    area.press("Alt+ArrowDown")
    area.press("Alt+ArrowDown")
    chosen = page.locator("#suggestions li[aria-selected=true] .word").inner_text()
    assert chosen == expected[2]
    area.press("Enter")
    assert area.input_value() in ("the cat sat on " + expected[2], "the cat sat on" + expected[2])
    area.press_sequentially(" ")
    page.wait_for_selector("#suggestions li")
    area.press("Escape")
    assert page.locator("#suggestions li").count() == 0
    area.press("Enter")  # with the suggestions hidden, Enter is a new line again
    assert area.input_value().endswith("\n")


def test_punctuation_attaches_and_the_newline_suggestion_shows_as_a_symbol(page, run):
    expected = [word for word, _ in suggest(run, "the cat sat on the mat ", 8)]
    assert "." in expected
    area = type_and_wait(page, "the cat sat on the mat ", expected)
    area.press(f"Alt+{expected.index('.') + 1}")
    assert area.input_value() == "the cat sat on the mat."
    # the tiny model never ranks the newline high: the server's answer is set for this part
    answer = ('{"text": "x", "unknown_seed_words": [], "next": [{"token": "\\n", "probability": 0.5, "text": "\\n"}, '
              '{"token": "the", "probability": 0.25, "text": " the"}]}')
    page.route("**/v1/suggest", lambda route: route.fulfill(status=200, content_type="application/json", body=answer))
    area.press_sequentially(" the dog")
    page.wait_for_function("document.querySelector('#suggestions li .word')?.textContent === '↵'")
    assert suggestions(page) == ["↵", "the"]
    area.press("Tab")
    assert area.input_value() == "the cat sat on the mat. the dog\n"


def test_continue_writes_at_the_caret(page):
    area = page.locator("#text")
    head, rest = "the cat sat on the mat .", " the dog sat on the log ."  # the model may start with "." or " the"
    area.fill(head + rest)
    area.evaluate("(e, at) => { e.focus(); e.setSelectionRange(at, at); }", len(head))
    page.eval_on_selector("#length", "e => { e.value = 5; e.dispatchEvent(new Event('input')); }")
    page.click("#continue")
    page.wait_for_function("document.querySelector('#status').textContent === 'done'")
    written = area.input_value()
    assert written.startswith(head) and written.endswith(rest) and len(written) > len(head + rest)


def test_continue_keeps_a_space_between_its_words_and_the_text_after_the_caret(page):
    """The model's text, whatever it is (here fixed: punctuation first, a word last), joins the text on both sides
    as generate would write it: the punctuation attached, a space before the word after the caret."""
    stream = 'data: {"choices": [{"text": ". and", "index": 0}]}\n\ndata: {"choices": [{"text": " so", "index": 0}]}' \
             '\n\ndata: [DONE]\n\n'
    page.route("**/v1/completions", lambda route: route.fulfill(status=200, body=stream,
                                                                 headers={"Content-Type": "text/event-stream"}))
    area = page.locator("#text")
    area.fill("the cat sat on the mat . the dog sat .")
    area.evaluate("(e, at) => { e.focus(); e.setSelectionRange(at, at); }", len("the cat sat on the mat . "))
    page.click("#continue")
    page.wait_for_function("document.querySelector('#status').textContent === 'done'")
    assert area.input_value() == "the cat sat on the mat .. And so the dog sat ."  # a sentence start capitalised


def test_the_model_is_named_once_loaded_and_a_bpe_word_completes_without_control_characters(page, run):
    """The about line and Continue wait for the model; a bpe suggestion (" fire": a leading space) completes the
    word being typed, and Continue's text loses the control characters a barely trained bpe model may write."""
    tokenizer = run.tokenizer
    assert page.locator("#continue").is_enabled()
    assert page.locator("#about").inner_text() == (f"a {tokenizer.level}-level model of {tokenizer.vocab_size:,} "
                                                   f"tokens" + (", lower-cased" if tokenizer.lowercase else ""))
    answer = ('{"text": "x", "unknown_seed_words": [], "next": [{"token": " fire", "probability": 0.5, '
              '"text": " fire"}, {"token": " fine", "probability": 0.25, "text": " fine"}]}')
    page.route("**/v1/suggest", lambda route: route.fulfill(status=200, content_type="application/json", body=answer))
    area = page.locator("#text")
    area.fill("the cat sat by the fi")  # one input event: no answer for a shorter text shows meanwhile
    page.wait_for_function("document.querySelectorAll('#suggestions li').length === 2")
    assert suggestions(page) == ["fire", "fine"]
    area.press("Tab")
    assert area.input_value() == "the cat sat by the fire"
    stream = 'data: {"choices": [{"text": " and\\u0007 so\\u001b", "index": 0}]}\n\ndata: [DONE]\n\n'
    page.route("**/v1/completions", lambda route: route.fulfill(status=200, body=stream,
                                                                 headers={"Content-Type": "text/event-stream"}))
    page.click("#continue")
    page.wait_for_function("document.querySelector('#status').textContent === 'done'")
    assert area.input_value() == "the cat sat by the fire and so"


def test_the_context_is_the_texts_end_cut_in_steps_never_inside_a_character(page):
    """At most 2,000 characters and less than 500 more: the cut moves in steps of 500 (the web engine's prefix
    cache stays valid, the context stays put between keystrokes), past a character's second half."""
    page.route("**/v1/suggest", lambda route: route.fulfill(status=200, content_type="application/json",
                                                             body='{"next": []}'))
    text = "a" * 499 + "🐕" + ("the cat sat on the mat . " * 100)[:2099]  # 2,600 characters in the page (🐕: 2)
    with page.expect_request("**/v1/suggest") as request:
        page.locator("#text").fill(text)
    assert request.value.post_data_json["text"] == text[500:]  # the cut at 500 falls inside 🐕: after it


def test_an_unreachable_server_clears_the_suggestions_and_is_recovered_from(page, run):
    expected = [word for word, _ in suggest(run, "the cat sat on ", 8)]
    area = type_and_wait(page, "the cat sat on ", expected)
    page.route("**/v1/**", lambda route: route.abort())
    area.press_sequentially("the ")
    page.wait_for_function("document.querySelector('#status').textContent.includes('unreachable')")
    assert page.locator("#status.error").count() == 1 and page.locator("#suggestions li").count() == 0
    page.unroute("**/v1/**")
    page.wait_for_function("document.querySelectorAll('#suggestions li').length > 0", timeout=15_000)
    assert page.locator("#status").inner_text() == ""


def test_an_error_is_cleared_by_the_next_answer(page, run):
    refused = []

    def once(route):
        if refused:
            return route.continue_()
        refused.append(route.request.url)
        route.fulfill(status=400, content_type="application/json",
                      body='{"error": {"message": "refused for the test", "type": "invalid_request_error"}}')

    page.route("**/v1/suggest", once)
    area = page.locator("#text")
    area.click()
    area.press_sequentially("the cat ")
    page.wait_for_function("document.querySelector('#status').textContent === 'refused for the test'")
    area.press_sequentially("sat ")
    page.wait_for_selector("#suggestions li")
    assert refused and page.locator("#status").inner_text() == ""


def test_status_is_read_out_and_the_theme_follows_the_system(page):
    assert page.get_attribute("#status", "aria-live") == "polite"
    assert page.get_attribute("#suggestions", "role") == "listbox"
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert light == "rgb(255, 255, 255)" and dark == "rgb(24, 26, 27)"
