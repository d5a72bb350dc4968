"""The web export (export/web.py and export/web/): its index.html is serve's writing page with the backend block
swapped (and refused loudly when page.html has lost the block's markers), weights.bin read back into the numpy
stepper gives the run's logits, quantized files shrink and still agree, a run the page cannot step is refused in
one line; and in
headless Chromium, opened from disk (file://, through data.js) and over http, the page's engine writes the same
greedy text as `lstm-textgen generate --greedy` at every level (with the run's own sampling rules and stop rules
too), encodes as the tokenizer does, steps LSTM and GRU layers as the numpy stepper does, suggests as serve does,
and the writing page takes suggestions with Tab and writes on with Continue.

The browser is the system's Chromium, as in tests/serve/test_page.py; without it the browser tests skip and say so.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.errors import TextgenError
from lstm_textgen.outputs import STAMP
from lstm_textgen.export.web import pack_model, web_files, web_page, web_stepper
from lstm_textgen.generation.interactive import suggest
from lstm_textgen.generation.sample import encode_text
from lstm_textgen.model.stepper import Stepper
from lstm_textgen.model.weights import ModelWeights
from lstm_textgen.run.rundir import load_run
from lstm_textgen.serve.pages import page as served_page

from conftest import TINY_TEXT, train_tiny

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # --no-sandbox: CI runs as root
with_browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH: apt-get install chromium (.ci/run "
                                                           "does) to run the web page tests")
LEVELS = ("word", "whitespace", "char", "bpe")
LENGTH = 40
SEEDS = {  # unknown words, quotes, apostrophes, a line end; at bpe accents, an emoji, CJK
    "word": ["the cat sat on", "The zebra's \"best\" friend", "the dog , 'the' cat don't", "the cat\nsat by the",
             "a fire ."],
    "whitespace": ["the cat sat on", "the zebra , \"best\" of", "a dog 's friend\nthe", "sat by the fire ."],
    "char": ["the cat s", "The Zebra's \"mat\"", "the dog\nsat", "é friends, "],
    "bpe": ["the café", "the naïve 🐕 dog", "世界 the cat's \"mat\"", "the dog\n  sat", "the caf"],
}
TEXTS = ["the cat sat on the mat .", "The Cat's \"best\" friend, 'quoted' don't o'er rock’n’roll we'll THEY'RE",
         "café naïve Ünïcödé — dash -- double ... !!! ?!", "emoji 🐕🐈 and 世界, 日本語の文",
         "  multiple   spaces\n\nnew lines\n  \n", "<pad> <unk> x_y 3.14 1,000 ①② ½ ٣",
         "tab\there (paren) [br] {c}", "``quoted'' “curly” ‘single’ $5 % ¿qué? ¡sí!", "ΟΔΟΣ Σίσυφος straße İstanbul",
         "\"", "'tis"]


# ---------------------------------------------------------------- helpers and fixtures

def write_export(run, folder: Path, quantize: str | None = None) -> Path:
    """The export folder as the command writes it: web_files() and a byte copy of the run's tokenizer.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in web_files(run, quantize).items():
        (folder / name).write_bytes(data)
    shutil.copyfile(run.run_dir / "tokenizer.json", folder / "tokenizer.json")
    return folder


def cli_greedy(run_dir: Path, seed: str, n: int = LENGTH) -> str:
    """What `lstm-textgen generate --greedy` prints on stdout."""
    result = CliRunner().invoke(cli, ["generate", "--run", str(run_dir), "--seed", seed, "--greedy", "-n", str(n)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def run_with_generate(run_dir: Path, folder: Path, **generate) -> Path:
    """A copy of a run whose generate: section has these settings."""
    target = shutil.copytree(run_dir, folder)
    config = yaml.safe_load((target / "config.yaml").read_text(encoding="utf-8"))
    config["generate"].update(generate)
    (target / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def exports(level_runs, tmp_path_factory) -> dict[str, Path]:
    """Each level's run exported once (float32), under one folder that the http server serves."""
    root = tmp_path_factory.mktemp("web")
    return {level: write_export(load_run(level_runs[level]), root / level) for level in LEVELS}


@pytest.fixture(scope="module")
def http_root(exports):
    """A real static HTTP server on a free port, serving the folder that holds the exports."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    root = next(iter(exports.values())).parent
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no Chromium on PATH: apt-get install chromium (.ci/run does) to run the web page tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: pip install -e '.[test]'")
    with sync_api.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield context
        finally:
            context.close()


def open_page(browser, url: str, ready: bool = True):
    """A new tab at url; with ready, once the engine has loaded (failing with its reason if it cannot)."""
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    if ready:
        page.evaluate("lstmTextgen.ready.then(() => true)")
    page.errors = errors
    return page


def page_url(exports, http_root, level: str, how: str) -> str:
    return (exports[level] / "index.html").as_uri() if how == "file" else f"{http_root}/{level}/index.html"


GENERATE_ALL = """async ([seeds, n]) => {
  const out = [];
  for (const seed of seeds) out.push(seed + await lstmTextgen.generate(seed, n, {greedy: true}));
  return out;
}"""


# ---------------------------------------------------------------- web.py: the files and their formats

@pytest.mark.parametrize("level", LEVELS)
def test_weights_read_back_give_the_runs_logits(level_runs, level):
    run = load_run(level_runs[level])
    files = web_files(run, None)
    model = json.loads(files["model.json"])
    assert set(files) == {"index.html", "lstm-textgen.js", "weights.bin", "model.json", "data.js"}
    assert model["bytes"] == len(files["weights.bin"]) and model["tokenizer"]["level"] == level
    assert all(entry["offset"] % 4 == 0 and entry["dtype"] == "float32" for entry in model["tensors"].values())
    assert model["generate"] == {k: v for k, v in dataclasses.asdict(run.config.generate).items()
                                 if k != "chat_template"}
    ids = np.array([encode_text(run.tokenizer, TINY_TEXT[:200])])
    exported = web_stepper(model, files["weights.bin"]).logits_sequence(ids)
    np.testing.assert_allclose(exported, Stepper(run.weights).logits_sequence(ids), atol=1e-5)
    data = files["data.js"].decode("ascii")  # all ASCII: read right whatever charset a browser assumes
    assert data.startswith("window.LSTM_TEXTGEN_DATA = {") and data.endswith("};\n")


def test_the_page_is_the_served_page_with_the_web_backend_swapped_in():
    """One page source: index.html is page.html but for its one backend block (the server's API, the run picker,
    the API key), which becomes export/web/backend.html (the engine beside it), and the generator tag's version."""
    served = served_page("page.html")
    backend = resources.files("lstm_textgen.export").joinpath("web", "backend.html").read_text(encoding="utf-8")
    html = web_page(served, backend)
    start, end = "<!-- backend:", "<!-- /backend -->"
    assert served.count(start) == html.count(start) == 1 and served.count(end) == html.count(end) == 1
    assert html.split(start)[0] == served.split(start)[0].replace('content="lstm-textgen"', f'content="{STAMP}"')
    assert html.split(end)[1] == served.split(end)[1]  # the page's script: the same
    assert html[html.index(start):html.index(end) + len(end)] == backend.strip()
    assert '<script src="lstm-textgen.js"></script>' in html
    assert not any(part in html for part in ('id="model"', 'id="key"', "/v1/", "fetch("))  # no server in it


@pytest.mark.parametrize("damage", ["<!-- backend:", "<!-- /backend -->", '<meta name="generator"'])
def test_a_page_without_its_backend_markers_is_refused(damage):
    served = served_page("page.html")
    with pytest.raises(ValueError, match="one backend block"):
        web_page(served.replace(damage, "<!-- gone"), "<script></script>")
    with pytest.raises(ValueError, match="one backend block"):
        web_page(served + served[served.index("<!-- backend:"):], "<script></script>")  # two blocks


@pytest.mark.slow
def test_quantized_weights_shrink_and_agree(big_run):
    run = load_run(big_run)
    ids = np.array([encode_text(run.tokenizer, TINY_TEXT[:400])])
    reference = Stepper(run.weights).logits_sequence(ids)
    sizes = {}
    for quantize in (None, "float16", "int8"):
        model, weights = pack_model(run.weights, quantize)
        sizes[quantize] = len(weights)
        logits = web_stepper(model, weights).logits_sequence(ids)
        assert (logits.argmax(-1) == reference.argmax(-1)).mean() >= 0.9, quantize
        assert np.abs(logits - reference).max() < (1e-2 if quantize == "float16" else 0.1)
        kinds = {entry["dtype"] for name, entry in model["tensors"].items() if name.endswith("/bias")}
        assert kinds == {"float32"}  # biases stay float32
    assert sizes["float16"] <= 0.51 * sizes[None] and sizes["int8"] <= 0.30 * sizes[None], sizes


def test_a_zero_embedding_row_stays_masked_when_quantized(tiny_run):
    run = load_run(tiny_run)
    weights = copy.deepcopy(run.weights)
    embedding = weights.layers[0]["weights"]["vars"][0]
    embedding[3] = 0.0
    embedding[4] = embedding[4] * 1e-6  # tiny, but not zero: int8 rounds it to zeros, and it must not be masked
    model, data = pack_model(weights, "int8")
    assert model["masked_ids"] == [3]
    stepper = web_stepper(model, data)
    assert stepper.masked_ids.nonzero()[0].tolist() == [3]
    masked = stepper.logits_sequence(np.array([[5, 3, 3]]))
    np.testing.assert_allclose(masked[0, 1:], np.repeat(masked[0, :1], 2, axis=0), atol=1e-6)  # the state kept


def test_quantize_must_be_one_the_page_reads(tiny_run):
    with pytest.raises(TextgenError, match="float16 or int8"):
        pack_model(load_run(tiny_run).weights, "int4")


@pytest.mark.slow
def test_a_bidirectional_run_is_refused_in_one_line(bidirectional_run):
    run = load_run(bidirectional_run)
    with pytest.raises(TextgenError) as refused:
        web_files(run, None)
    message = str(refused.value)
    assert "bidirectional" in message and "model.bidirectional=false" in message and "\n" not in message


def test_an_activation_the_page_lacks_is_refused(tiny_run):
    weights = copy.deepcopy(load_run(tiny_run).weights)
    next(layer for layer in weights.layers if layer["class_name"] == "LSTM")["config"]["activation"] = "selu"
    with pytest.raises(TextgenError, match="'selu' is not one the web page steps"):
        pack_model(weights)


def test_weights_shorter_than_the_model_says_are_refused(tiny_run):
    model, weights = pack_model(load_run(tiny_run).weights)
    with pytest.raises(TextgenError, match="write the export again"):
        web_stepper(model, weights[:-8])


# ---------------------------------------------------------------- the engine in Chromium

@pytest.mark.slow
@with_browser
@pytest.mark.parametrize("how", ["file", "http"])
@pytest.mark.parametrize("level", LEVELS)
def test_greedy_text_equals_generate_greedy(browser, exports, http_root, level_runs, level, how):
    page = open_page(browser, page_url(exports, http_root, level, how))
    written = page.evaluate(GENERATE_ALL, [SEEDS[level], LENGTH])
    expected = [cli_greedy(level_runs[level], seed).removesuffix("\n") for seed in SEEDS[level]]
    assert written == expected
    assert not page.errors


RULES = {  # generate: settings of a run that greedy text depends on, each case a copy of a run
    "penalties": ("word", dict(repetition_penalty=1.6, frequency_penalty=0.4, presence_penalty=0.3,
                               no_repeat_ngram_size=3)),
    "stop": ("word", dict(stop=["mat"], min_length=3, logit_bias={"mat": 3.0})),
    "newlines": ("char", dict(stop_newlines=2, logit_bias={"\n": 3.0}, presence_penalty=0.2)),
    "bpe": ("bpe", dict(repetition_penalty=1.3, no_repeat_ngram_size=2, stop=["og"])),
}


@pytest.mark.slow
@with_browser
@pytest.mark.parametrize("case", RULES)
def test_greedy_text_follows_the_runs_sampling_and_stop_rules(browser, level_runs, tmp_path, case):
    level, generate = RULES[case][0], dict(RULES[case][1])
    vocab = load_run(level_runs[level]).tokenizer.vocab
    if "logit_bias" in generate:  # by token, as the words are not ids yet
        generate["logit_bias"] = {vocab.index(token): bias for token, bias in generate["logit_bias"].items()}
    run_dir = run_with_generate(level_runs[level], tmp_path / "run", **generate)
    page = open_page(browser, (write_export(load_run(run_dir), tmp_path / "web") / "index.html").as_uri())
    seeds = SEEDS[level][:3]
    written = page.evaluate(GENERATE_ALL, [seeds, LENGTH])
    expected = [cli_greedy(run_dir, seed).removesuffix("\n") for seed in seeds]
    assert written == expected
    plain = [cli_greedy(level_runs[level], seed).removesuffix("\n") for seed in seeds]
    assert written != plain  # the rules changed the text
    if "stop" in generate or "stop_newlines" in generate:
        assert any(len(a) < len(b) for a, b in zip(written, plain))  # and stopped it early


@pytest.mark.slow
@with_browser
@pytest.mark.parametrize("level", ["word", "bpe"])
def test_sampling_that_leaves_one_token_is_greedy_and_a_stopped_or_unusable_seed_is_said(browser, exports, level):
    """The sampler's narrowing rules (top-k, top-p, min-p) each leave only the likeliest token here, so the draw
    is the greedy text; an aborted signal stops before the first token; a seed of unknown words is refused."""
    page = open_page(browser, (exports[level] / "index.html").as_uri())
    seed = SEEDS[level][0]
    texts = page.evaluate("""async (seed) => {
      const greedy = await lstmTextgen.generate(seed, 30, {greedy: true}), out = [greedy];
      for (const narrow of [{top_k: 1}, {top_p: 1e-6}, {min_p: 1}]) {
        out.push(await lstmTextgen.generate(seed, 30, {temperature: 0.7, ...narrow}));
      }
      const stop = new AbortController();
      stop.abort();
      out.push(await lstmTextgen.generate(seed, 30, {temperature: 1, signal: stop.signal}));
      out.push(await lstmTextgen.generate("zzz qqq", 5).then(() => "written", (e) => e.message));
      return out;
    }""", seed)
    assert texts[1:4] == [texts[0]] * 3 and texts[0]
    assert texts[4] == ""
    if level == "word":
        assert texts[5].startswith("no word of the seed")
    else:  # every byte is a token: nothing is unknown
        assert texts[5] == "written"


@pytest.mark.slow
@with_browser
@pytest.mark.parametrize("level", LEVELS)
def test_the_engine_encodes_as_the_tokenizer_does(browser, exports, level_runs, level):
    page = open_page(browser, (exports[level] / "index.html").as_uri())
    tokenizer = load_run(level_runs[level]).tokenizer
    texts = TEXTS + [TINY_TEXT[:300]]
    encoded = page.evaluate("texts => texts.map((t) => lstmTextgen.encode(t))", texts)
    assert encoded == [encode_text(tokenizer, text) for text in texts]
    random = np.random.default_rng(0).integers(2, tokenizer.vocab_size, (20, 30)).tolist()  # at bpe: broken bytes
    decoded = page.evaluate("all => all.map((ids) => lstmTextgen.decode(ids))", encoded + random)
    assert decoded == [tokenizer.decode(ids) for ids in encoded + random]


@pytest.mark.slow
@with_browser
@pytest.mark.parametrize("level", LEVELS)
def test_suggestions_are_what_serve_gives(browser, exports, level_runs, level):
    page = open_page(browser, (exports[level] / "index.html").as_uri())
    run = load_run(level_runs[level])
    long = TINY_TEXT[:600]  # then texts that share a part of it: the engine's prefix cache resumes from its states
    for text in ["the cat sat on ", "the dog", "the cat's \"best\" ", long, long[:300] + "the fire .", long + "the"]:
        found = page.evaluate("([t, k]) => lstmTextgen.suggest(t, k)", [text, 8])
        expected = suggest(run, text, 8)
        assert [o["token"] for o in found] == [word for word, _ in expected], text
        np.testing.assert_allclose([o["probability"] for o in found], [p for _, p in expected], rtol=1e-4)


def variant_exports(gru_run: Path, big_run: Path, tiny_run: Path, folder: Path) -> list[tuple[Path, Stepper]]:
    """Exports of stacks that the level runs do not have, each with its numpy stepper: 2 GRU layers (reset_after, as
    Keras trains them, and the same weights read without it), 2 LSTM layers, an LSTM with a masked embedding row."""
    out = []
    for name, run_dir in (("gru", gru_run), ("gru_plain", gru_run), ("lstm2", big_run), ("masked", tiny_run)):
        run = load_run(run_dir)
        weights = copy.deepcopy(run.weights)
        for layer in weights.layers:
            if name == "gru_plain" and layer["class_name"] == "GRU":
                layer["config"]["reset_after"] = False
                layer["weights"]["cell"]["vars"][2] = layer["weights"]["cell"]["vars"][2][0]
        if name == "masked":
            weights.layers[0]["weights"]["vars"][0][3] = 0.0
        fake = SimpleNamespace(weights=weights, run_dir=run.run_dir, config=run.config)
        out.append((write_export(fake, folder / name), Stepper(ModelWeights(weights.layers))))
    return out


@pytest.mark.slow
@with_browser
def test_the_engine_steps_gru_lstm_and_masks_as_the_numpy_stepper(browser, gru_run, big_run, tiny_run, tmp_path):
    ids = [2, 3, 4, 3, 5, 6, 2, 7, 3, 8, 4, 2]
    for folder, stepper in variant_exports(gru_run, big_run, tiny_run, tmp_path):
        page = open_page(browser, (folder / "index.html").as_uri())
        logits = page.evaluate("ids => ids.map((_, i) => lstmTextgen.logits(ids.slice(0, i + 1)))", ids)
        np.testing.assert_allclose(logits, stepper.logits_sequence(np.array([ids]))[0], atol=1e-5, err_msg=folder.name)


# ---------------------------------------------------------------- the writing page

@pytest.mark.slow
@with_browser
def test_the_page_from_disk_suggests_takes_one_with_tab_and_continues(browser, exports, level_runs, tmp_path):
    html = (exports["word"] / "index.html").read_text(encoding="utf-8")
    script = (exports["word"] / "lstm-textgen.js").read_text(encoding="utf-8")
    assert f'<meta name="generator" content="{STAMP}">' in html  # the program's stamp, with its version
    assert not any(url in html + script for url in ("http://", "https://", "//cdn"))  # nothing from the network
    page = open_page(browser, (exports["word"] / "index.html").as_uri())
    page.wait_for_function("document.querySelector('#status').textContent === ''")
    expected = [word for word, _ in suggest(load_run(level_runs["word"]), "the cat sat on ", 8)]
    area = page.locator("#text")
    area.click()
    area.press_sequentially("the cat sat on ")
    page.wait_for_function("n => document.querySelectorAll('#suggestions li').length === n", arg=len(expected))
    labels = page.locator("#suggestions li .word").evaluate_all("items => items.map(i => i.textContent)")
    assert labels == expected
    area.press("Tab")
    written = area.input_value()
    assert written in ("the cat sat on " + expected[0], "the cat sat on" + expected[0])
    page.eval_on_selector("#length", "e => { e.value = 10; e.dispatchEvent(new Event('input')); }")
    page.click("#continue")
    page.wait_for_function("document.querySelector('#status').textContent === 'done'")
    continued = area.input_value()
    assert continued.startswith(written) and len(continued.split()) > len(written.split())
    assert not page.errors
    page.screenshot(path=str(tmp_path / "page.png"))


@pytest.mark.slow
@with_browser
def test_the_page_writes_a_lowercased_models_words_in_the_writers_case(browser, exports, level_runs):
    page = open_page(browser, (exports["word"] / "index.html").as_uri())
    expected = [word for word, _ in suggest(load_run(level_runs["word"]), "the cat sat on the mat . ", 8)]
    first = next(i for i, word in enumerate(expected) if word.isalpha())
    area = page.locator("#text")
    area.click()
    area.press_sequentially("the cat sat on the mat. ")
    page.wait_for_function("n => document.querySelectorAll('#suggestions li').length === n", arg=len(expected))
    area.press(f"Alt+{first + 1}")
    assert area.input_value() == "the cat sat on the mat. " + expected[first].capitalize()


@pytest.mark.slow
@with_browser
def test_the_page_completes_a_bpe_word_being_typed(browser, exports):
    page = open_page(browser, (exports["bpe"] / "index.html").as_uri())
    area = page.locator("#text")
    area.click()
    area.press_sequentially("the cat sat by the fi")
    page.wait_for_function("document.querySelector('#suggestions li .word')?.textContent === 'fire'")
    area.press("Tab")
    assert area.input_value() == "the cat sat by the fire"


@pytest.mark.slow
@with_browser
@pytest.mark.parametrize("missing", ["data.js", "lstm-textgen.js"])
def test_a_page_that_cannot_load_says_why(browser, exports, tmp_path, missing):
    folder = shutil.copytree(exports["word"], tmp_path / "web")
    (folder / missing).unlink()
    page = open_page(browser, (folder / "index.html").as_uri(), ready=False)
    page.wait_for_selector("#status.error")
    assert missing in page.locator("#status").inner_text()
    assert page.locator("#continue").is_disabled()


# ---------------------------------------------------------------- runs the level runs do not cover

@pytest.fixture(scope="module")
def extra_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("extra") / "corpus.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def big_run(extra_corpus) -> Path:
    """Two LSTM layers of 128 units: the matrices outweigh the biases, as in a real model."""
    return train_tiny(extra_corpus, extra_corpus.parent / "big", "model.units=128", "model.dense_units=128",
                      "embedding.dim=64", "model.layers=2")

