"""The pages: the writing page `serve` sends at / and the inspection page, sent at /inspect (it asks /v1/inspect
for its data) or written by `lstm-textgen inspect` with its data inside, so that it opens from disk. Each is one
self-contained HTML file: no CDN, no build step."""
from __future__ import annotations

import json
from importlib import resources

from lstm_textgen.outputs import STAMP

_DATA = "/*DATA*/"


def page(name: str) -> str:
    """A page's HTML as shipped (page.html, inspect.html)."""
    return resources.files("lstm_textgen.serve").joinpath(name).read_text(encoding="utf-8")


def inspect_page(data: dict | None = None) -> str:
    """The inspection page: with data (page_data() of an inspection) inside and the program's stamp, or without,
    to fetch it from the server."""
    html = page("inspect.html")
    if data is None:
        return html
    # "<" as \\u003c: no "</script>" or "<!--" in the data can end or change the script element
    embedded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    html = html.replace('<meta name="generator" content="lstm-textgen">', f'<meta name="generator" content="{STAMP}">')
    return html.replace(_DATA, embedded, 1)
