"""MkDocs hooks (mkdocs.yml `hooks:`): the pages generated from the code at build time. A page asks for a generated
part with a marker line, `<!-- generated: NAME -->`, which is replaced by what GENERATORS[NAME] returns; an unknown
name fails the build. The command-line reference is mkdocs-click's own directive (docs/reference/cli.md)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the benchmarks package sits beside lstm_textgen and is not installed with it
    sys.path.insert(0, str(REPO))
MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)


def config_keys() -> str:
    from lstm_textgen.config.reference import config_markdown
    return config_markdown()


def http_api() -> str:
    from lstm_textgen.serve.reference import http_markdown
    return http_markdown()


def performance() -> str:
    from benchmarks.results import markdown_tables
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
