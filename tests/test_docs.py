"""The docs site builds with `mkdocs build --strict` (every link and anchor checked, every page in the nav), its
reference pages are written from the code (every config key, command and route on its page), and `make docs`
without the docs extra says in one line how to install it."""
from __future__ import annotations

import html
import importlib.util
import os
import subprocess
import sys

import pytest
from mkdocs.exceptions import PluginError

from lstm_textgen.cli import cli
from lstm_textgen.config import all_keys
from lstm_textgen.serve.app import build_app

from conftest import REPO

DOCS = REPO / "docs"
PAGES = ["index", "guides/training", "guides/levels", "guides/fine-tuning", "guides/embeddings", "guides/generation",
         "guides/serving", "guides/gpus", "guides/run-folder", "guides/perplexity", "guides/recipes", "performance",
         "quality-history", "reference/cli", "reference/config", "reference/http-api", "development"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site as `make docs` builds it, into a folder of the test's own."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # Material's banner, not a warning
    assert result.returncode == 0, result.stderr
    return out


def page_html(site, page: str) -> str:
    return (site / page / "index.html" if page != "index" else site / "index.html").read_text()


def page_text(site, page: str) -> str:
    return html.unescape(page_html(site, page))


def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_page_is_built_and_every_generated_part_filled_in(site):
    for page in PAGES:
        text = page_html(site, page)  # a marker left in is a raw HTML comment; one quoted in code is escaped
        assert "<!-- generated:" not in text and "::: mkdocs-click" not in text, page


def test_every_config_key_is_on_the_config_reference_page(site):
    text = page_text(site, "reference/config")
    missing = [key for key in all_keys() if f"<code>{key}</code>" not in text]
    assert not missing


def test_every_command_and_option_is_on_the_command_line_page(site):
    text = page_text(site, "reference/cli")
    for name, command in cli.commands.items():
        assert f'id="lstm-textgen-{name}"' in text, name
        for param in command.params:
            for flag in (*param.opts, *param.secondary_opts):
                if flag.startswith("--"):
                    assert flag in text, (name, flag)


def test_every_route_is_on_the_http_page(site):
    text = page_text(site, "reference/http-api")
    for route in build_app({}, None, 2048).routes:
        assert f"<code>{route.path_format}</code>" in text, route.path_format


def test_the_performance_page_is_what_the_recorded_results_give():
    docs_hooks = hooks()  # puts the repository root, where benchmarks/ is, on sys.path
    from benchmarks.results import markdown_tables

    assert docs_hooks.performance() == markdown_tables(REPO / "benchmarks" / "results")


def test_a_marker_naming_no_generator_fails_the_build():
    class Page:
        class file:
            src_uri = "x.md"

    with pytest.raises(PluginError, match="'nonsense'"):
        hooks().on_page_markdown("# X\n\n<!-- generated: nonsense -->\n", Page, None, None)
    assert hooks().on_page_markdown("plain\n", Page, None, None) == "plain\n"


def test_the_docs_point_at_nothing_outside_the_repository():
    for path in [REPO / "mkdocs.yml", *DOCS.rglob("*.md")]:
        text = path.read_text()
        assert "../shared" not in text and "shared/data" not in text, path


CHECK = REPO / "docs" / "check_extra.py"


def test_make_docs_without_the_docs_extra_says_how_to_install_it_in_one_line():
    hide = f"import sys, runpy; sys.modules['mkdocs'] = None; runpy.run_path({str(CHECK)!r}, run_name='__main__')"
    result = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "pip install -e '.[docs]'" in lines[0], lines
    assert "mkdocs" in lines[0]


def test_with_the_docs_extra_the_check_passes_silently():
    result = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
