"""The config's references, written from the settings' declarations: configs/default.yaml (every key of every
section at its built-in default, with its help as the comment; `python -m lstm_textgen.config.reference >
configs/default.yaml`, make configs, writes it and a test checks the shipped file is current) and the docs' config
reference page (config_markdown(), which the docs build calls)."""
from __future__ import annotations

import html
import re

import yaml

from lstm_textgen.config.load import SECTIONS
from lstm_textgen.config.setting import Bounds, Policy, declared, default_of
from lstm_textgen.config.values import type_name

HEADER = """\
# lstm-textgen default config: every key with its built-in default.
# Written from the settings' declarations (lstm_textgen/config/): regenerate it with `make configs`.
# Precedence, lowest first: built-in defaults, --config FILE, --set key.path=value, command flags.
# Write floats like 1.0e-3: PyYAML reads 1e-3 as a string.
"""
COMMENT_COLUMN = 25  # where the comments start, as far as the values allow


def yaml_value(value) -> str:
    """A value as YAML reads it back to the same Python value (floats in exponent form keep their point)."""
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).removesuffix("\n...\n").strip()


def defaults_yaml() -> str:
    lines = [HEADER]
    for section, cls in SECTIONS.items():
        lines.append(f"{section}:")
        for name, _, field, rule in declared(cls):
            setting = f"  {name}: {yaml_value(default_of(field))}"
            lines.append(f"{setting.ljust(COMMENT_COLUMN - 2)}  # {rule.help}")
        lines.append("")
    return "\n".join(lines)


# What fine-tuning does with a key (setting.Finetune); train: and generate: keys may always differ from the base's
FINETUNE = {"base": "stays the base run's", "differs": "taken from the base run; may be changed",
            "extend": "stays the base run's, unless data.base_vocab is extend", "own": "the new run's own, never taken "
            "from the base"}
FINETUNE_FREE = ("train", "generate")


def markdown_cell(text: str) -> str:
    """Plain text made safe for a Markdown table cell: HTML's specials escaped, Markdown's too."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", text)


def range_text(bounds: Bounds | None) -> str:
    """A number setting's range as a reader writes it: (0, 1], ≥ 1, at most 10,000."""
    if bounds is None:
        return ""
    low, high = bounds.low, bounds.high
    if low is not None and high is not None:
        text = f"{'(' if bounds.low_open else '['}{low:g}, {high:g}{')' if bounds.high_open else ']'}"
    elif low is not None:
        text = f"{'>' if bounds.low_open else '≥'} {low:g}"
    else:
        text = ""
    if bounds.cap is not None:
        cap = int(bounds.cap) if float(bounds.cap).is_integer() else bounds.cap
        text += f"{', ' if text else ''}at most {cap:,}"
    return text + (f"; null {bounds.null}" if bounds.null else "")


def policy_text(section: str, rule: Policy) -> str:
    """A setting's policies in words: on resume, under fine-tuning, its generate flag and its HTTP field."""
    parts = ["*resume:* " + ("may change" if rule.resume else "may not change"),
             "*fine-tuning:* " + ("taken from the base run; may be changed" if section in FINETUNE_FREE
                                  and rule.finetune != "own" else FINETUNE[rule.finetune])]
    if rule.flag:
        parts.append("*flag:* " + ", ".join(f"`{flag}`" for flag in rule.flag.split("/")))
    if rule.http:
        parts.append(f"*HTTP field:* `{rule.http}`")
    return "; ".join(parts)


def config_markdown() -> str:
    """The config reference as Markdown: a table a section of every key's type, default, range, help and
    policies, read off the same declarations as configs/default.yaml."""
    lines = []
    for section, cls in SECTIONS.items():
        lines += [f"## {section}", "", "| key | type | default | range | what |", "|---|---|---|---|---|"]
        for name, kind, field, rule in declared(cls):
            cells = [f"`{section}.{name}`", markdown_cell(type_name(kind)), f"`{yaml_value(default_of(field))}`",
                     markdown_cell(range_text(field.metadata.get("bounds"))),
                     f"{markdown_cell(rule.help)}<br>{policy_text(section, rule)}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(defaults_yaml(), end="")
