"""MkDocs hooks (mkdocs.yml `hooks:`): the pages generated from the code at build time. A page asks for a generated
part with a marker line, `<!-- generated: NAME -->`, which is replaced by what GENERATORS[NAME] returns; an unknown
name fails the build. The command-line reference is mkdocs-click's own directive (docs/reference/cli.md)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of scripts beside the package, not installed with it
    sys.path.insert(0, str(REPO))
MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)
NO_RESULTS = ("No benchmark results are recorded yet: the figures appear here once `benchmarks/results/` holds "
              "them. [Quality history](quality-history.md) keeps the measurements made so far.")


def config_keys() -> str:
    from lstm_textgen.config.reference import config_markdown
    return config_markdown()


def http_api() -> str:
    from lstm_textgen.serve.reference import http_markdown
    return http_markdown()


def performance() -> str:
    try:
        from benchmarks.results import markdown_tables
    except ModuleNotFoundError as e:  # only its absence: a bug inside the module must fail the build
        if e.name not in ("benchmarks", "benchmarks.results"):
            raise
        return NO_RESULTS
    return markdown_tables(REPO / "benchmarks" / "results")


GENERATORS = {"config-keys": config_keys, "http-api": http_api, "performance": performance}


def on_page_markdown(markdown: str, page, config, files) -> str:
    def generated(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise PluginError(f"{page.file.src_uri} asks for a generated part {name!r}; known: "
                              f"{', '.join(GENERATORS)} (docs/hooks.py)")
        return GENERATORS[name]()
    return MARKER.sub(generated, markdown)
