"""load_config(): defaults <- a saved run's settings <- a YAML file <- --set overrides <- command flags, each value
converted to its field's declared type and every value checked once, on the final values; errors name the key
as the user typed it and are raised together."""
from __future__ import annotations

import dataclasses
import os
import typing

from lstm_textgen.config.sections import META_KEY, ORIGIN_KEY, Config
from lstm_textgen.config.setting import range_problems
from lstm_textgen.config.values import convert, nearest, parse_override, read_yaml, shown, type_name
from lstm_textgen.errors import ConfigError

SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def all_keys() -> list[str]:
    return [f"{s}.{k}" for s, cls in SECTIONS.items() for k in typing.get_type_hints(cls)]


def _merge(raw: dict, key: str, value: object, errors: list[str]) -> None:
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name or "." in name:
        errors.append(f"unknown config key {shown(key)}{nearest(key, all_keys(), list(SECTIONS))}")
        return
    target = raw.get(section)
    if not isinstance(target, dict):
        target = raw[section] = {}
    target[name] = value


def _section_values(section: str, body: object, errors: list[str]) -> dict:
    """A YAML section's values converted to the declared types; what cannot be is added to errors."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        errors.append(f"config section '{section}' must be a mapping of keys, got {shown(body)}")
        return {}
    types = typing.get_type_hints(SECTIONS[section])
    values = {}
    for name, value in body.items():
        key = f"{section}.{name}"
        if name not in types:
            errors.append(f"unknown config key {shown(key)}{nearest(key, all_keys(), list(SECTIONS))}")
            continue
        try:
            values[name] = convert(value, types[name])
        except (ValueError, TypeError) as e:
            what = e.args[0] if isinstance(e, ValueError) and e.args else type_name(types[name])
            errors.append(f"{key} must be {what}, got {shown(value)}")
    return values


def load_config(path: str | os.PathLike | None = None, overrides: typing.Iterable[str] = (),
                values: dict[str, object] | None = None, base: dict | None = None) -> Config:
    """Resolve defaults <- base <- YAML file <- --set overrides <- explicit values; validate once, raise once.

    base is a saved run's config (as a dict), for commands that continue a run.
    """
    raw: dict = {section: dict(body) if isinstance(body, dict) else body for section, body in (base or {}).items()}
    for section, body in (read_yaml(path) if path is not None else {}).items():
        if isinstance(body, dict) and isinstance(raw.get(section), dict):
            raw[section].update(body)
        else:
            raw[section] = body
    raw.pop(META_KEY, None)
    raw.pop(ORIGIN_KEY, None)
    errors: list[str] = []
    for text in overrides:
        _merge(raw, *parse_override(text), errors)
    for key, value in (values or {}).items():
        _merge(raw, key, value, errors)
    sections: dict[str, dict] = {}
    for section, body in raw.items():
        if section not in SECTIONS:
            errors.append(f"unknown config section {shown(section)}{nearest(str(section), all_keys(), list(SECTIONS))}")
            continue
        sections[section] = _section_values(section, body, errors)
    if errors:
        raise ConfigError("; ".join(errors))

    config = Config(**{name: cls(**sections.get(name, {})) for name, cls in SECTIONS.items()})
    problems = []
    for name in SECTIONS:
        section = getattr(config, name)
        key = (lambda n, s=name: f"{s}.{n}")
        problems += range_problems(section, key) or (section.problems(key) if hasattr(section, "problems") else [])
    problems = problems or config.problems()  # combinations are judged once each value is valid
    if problems:
        raise ConfigError("; ".join(problems))
    return config
