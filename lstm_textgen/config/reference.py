"""configs/default.yaml, written from the settings' declarations: every key of every section at its built-in
default, with its help as the comment. `python -m lstm_textgen.config.reference > configs/default.yaml` (make
configs) writes it; a test checks the shipped file is current."""
from __future__ import annotations

import yaml

from lstm_textgen.config.load import SECTIONS
from lstm_textgen.config.setting import declared, default_of

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


if __name__ == "__main__":
    print(defaults_yaml(), end="")
