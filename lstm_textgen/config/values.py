"""Config values: YAML read with a bound on its size (no alias bombs, no key given twice), `--set KEY=VALUE`,
typed conversion, values shown in messages, shell-quoted command hints, and the run folder name a corpus gives
(stdlib + yaml only)."""
from __future__ import annotations

import difflib
import glob
import math
import os
import re
import shlex
import typing
from pathlib import Path
from typing import Callable, Literal

import yaml

from lstm_textgen.errors import ConfigError

Key = Callable[[str], str]  # a field name -> the name the user typed (generate.top_p, or --top-p)
MAX_YAML_BYTES = 1 << 20  # a config file is a few kB; anything this big is not one
MAX_YAML_NODES = 100_000  # values after aliases are expanded: a few hundred bytes can otherwise name billions
MAX_SHOWN = 60  # characters of a bad value repeated in an error message


def shown(value: object) -> str:
    """repr(value) for an error message, cut to MAX_SHOWN characters: a message never echoes a whole file."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def command(*words: object) -> str:
    """A command line to paste into a shell, each word quoted as the shell needs it (a path with spaces, say)."""
    return " ".join(shlex.quote(str(word)) for word in words)


def read_yaml(path: str | os.PathLike, what: str = "config file") -> dict:
    """Read a YAML mapping safely, turning every failure into one ConfigError line."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ConfigError(f"{what} {path} is {path.stat().st_size:,} bytes, too big for a config file "
                              f"(at most {MAX_YAML_BYTES:,}); give a .yaml file of settings")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; give a .yaml file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") from None
    raw = parse_yaml(text, f"{what} {path}")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must be a mapping of sections (data:, model:, ...), "
                          f"got a {type(raw).__name__}")
    return raw


def parse_yaml(text: str, what: str):
    """yaml.safe_load, refusing a document whose aliases expand to more than MAX_YAML_NODES values."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters at once
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, set())
        if size > MAX_YAML_NODES:
            raise ConfigError(f"{what} expands to over {MAX_YAML_NODES:,} values through its aliases (&, *); "
                              "write the settings out plainly")
        _refuse_duplicate_keys(node, "", what, set())
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{what} is not valid YAML{where}: {problem}; fix the syntax") from None
    finally:
        if loader is not None:
            loader.dispose()


def _refuse_duplicate_keys(node, where: str, what: str, seen: set) -> None:
    """A key given twice in one mapping, at any depth, is refused: YAML would keep the second silently."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            path = f"{where}.{name}" if where else str(name)
            if name is not None and name in lines:
                raise ConfigError(f"{what} gives {shown(path)[1:-1]} twice (lines {lines[name]} and "
                                  f"{key.start_mark.line + 1}), and only one can count; keep one")
            lines[name] = key.start_mark.line + 1
            _refuse_duplicate_keys(value, path, what, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{where}[{i}]", what, seen)


def _expanded_size(node, sizes: dict, open_nodes: set) -> int:
    """How many values the node stands for once every alias is copied out (a shared node counts each time)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:  # an alias inside its own anchor: a value that contains itself
        return MAX_YAML_NODES + 1
    open_nodes.add(key)
    children = node.value if isinstance(node, yaml.SequenceNode) else (
        [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else [])
    size = 1
    for child in children:
        size += _expanded_size(child, sizes, open_nodes)
        if size > MAX_YAML_NODES:
            break
    open_nodes.discard(key)
    sizes[key] = size
    return size


def parse_override(text: str) -> tuple[str, object]:
    """Split 'model.units=128' into ('model.units', 128), reading the value as YAML."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE such as model.units=128, got {shown(text)}")
    try:
        parsed = parse_yaml(value, f"--set {key}") if value.strip() else None
    except ConfigError as e:
        if "aliases" in str(e):
            raise
        parsed = value  # not YAML: keep the text and let the field's type decide
    return key, parsed


def nearest(key: str, keys: list[str], sections: list[str]) -> str:
    """' (did you mean ...?)' for a misspelt key, else the valid sections."""
    match = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if not match:  # a misspelt section name: compare the part after the dot too
        tail = key.rsplit(".", 1)[-1]
        match = [k for k in keys if k.endswith("." + tail)][:1]
    return f" (did you mean '{match[0]}'?)" if match else f" (valid sections: {', '.join(sections)})"


def type_name(tp: object) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in args)
    if typing.get_origin(tp) is list:
        return f"a list of {type_name(args[0])}"
    if typing.get_origin(tp) is dict:
        return f"a mapping of {type_name(args[0])} to {type_name(args[1])}"
    if type(None) in args:
        return f"{type_name(next(a for a in args if a is not type(None)))} or null"
    if args:  # a union: int | Literal["auto"]
        return " or ".join(type_name(a) for a in args)
    return getattr(tp, "__name__", str(tp))


def convert(value: object, tp: object) -> object:
    """value as type tp, or ValueError; ints are accepted for floats, never bools for numbers, and a float
    must be finite (nan and inf pass every comparison the wrong way)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Literal:
        if isinstance(value, str) and value.lower() in args:
            return value.lower()
        raise ValueError
    if typing.get_origin(tp) is list:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValueError
        return [convert(item, args[0]) for item in items]
    if typing.get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise ValueError
        return {convert(key, args[0]): convert(item, args[1]) for key, item in value.items()}
    if type(None) in args:
        return None if value is None else convert(value, next(a for a in args if a is not type(None)))
    if args:  # a union: the first member that takes the value, else the first member's reason, if it gave one
        reasons = []
        for member in args:
            try:
                return convert(value, member)
            except ValueError as e:
                reasons += [e] if e.args else []
        raise reasons[0] if reasons else ValueError
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is float and (isinstance(value, (int, float, str)) and not isinstance(value, bool)):
        try:
            number = float(value)  # PyYAML reads 1e-3 as a string; accept it anyway
        except (OverflowError, ValueError):  # not a number, or an int past float's range
            raise ValueError from None
        if not math.isfinite(number):
            raise ValueError("a finite number")
        return number
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError


def run_name(corpus: str) -> str:
    """A folder name for the corpus: its file's stem, its folder's name, or a glob's fixed folder; letters,
    digits, '.', '_' and '-' only, never '.' or '..' (so runs/<name> is always a folder right under runs/)."""
    path = Path(os.path.expanduser(corpus.strip()))
    magic = next((i for i, part in enumerate(path.parts) if glob.has_magic(part)), None)
    if magic is not None:  # a glob: its fixed leading folder
        path = Path(*path.parts[:magic]) if magic else Path(".")
    if any(part in (".", "..") for part in path.parts) or not path.parts:
        path = Path(os.path.abspath(path))
    name = path.stem if path.suffix and magic is None else path.name
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return name or "run"
