"""A setting declared once, on its config field: its type and default (the dataclass's), its range, its help, and
its policies: the generate flag and the HTTP field that set it, whether it may change when a run resumes, and
whether a fine-tuned run keeps its base's. The command line, the HTTP checks, the resume and fine-tune rules,
configs/default.yaml and the docs' reference are all read off these declarations (stdlib only)."""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Literal

from lstm_textgen.config.values import Key, shown

# What fine-tuning does with a data:, embedding: or model: key (train: and generate: keys may always differ):
# "base": it stays the base run's; "differs": the new run may set its own; "extend": it may differ under
# data.base_vocab=extend (it picks the words added); "own": each run sets its own, never inherited.
Finetune = Literal["base", "differs", "extend", "own"]
_UNSET = object()


@dataclass(frozen=True)
class Policy:
    """A setting's declaration beyond its type and default."""
    help: str
    flag: str | None = None  # the generate option, e.g. "-t/--temperature"
    http: str | None = None  # the field of an HTTP completion request, e.g. "max_tokens"
    resume: bool = False  # it may change when a run resumes (how the rest of the run trains, not what it is)
    finetune: Finetune = "base"


@dataclass(frozen=True)
class Bounds:
    """The range a number setting may take; cap is a sanity limit above which a value is a typo."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    cap: float | None = None
    null: str = ""  # what null means, for the message ("for no time limit"); "" when null is not special

    def problem(self, key: str, value, optional: bool) -> str | None:
        low, high = self.low, self.high
        below = low is not None and (value <= low if self.low_open else value < low)
        above = high is not None and (value >= high if self.high_open else value > high)
        if below or above:
            if low is not None and high is not None:
                bounds = (f"between {low:g} and {high:g} (exclusive)" if self.low_open and self.high_open else
                          f"in {'(' if self.low_open else '['}{low:g}, {high:g}{')' if self.high_open else ']'}")
            else:
                bounds = f"{'>' if self.low_open else '>='} {low:g}"
            null = (f", or null {self.null}" if self.null else " or null") if optional else ""
            return f"{key} must be {bounds}{null}, got {shown(value)}"
        if self.cap is not None and value > self.cap:
            return f"{key} must be <= {self.cap:,}, got {shown(value)}"
        return None


def range_problems(section, key: Key) -> list[str]:
    """Every number field of a section checked against its declared Bounds (and a float for being finite:
    nan passes every comparison the wrong way, and a command flag is not read through convert()); a mapping's
    numbers are checked each, named as key[item]."""
    problems, types = [], typing.get_type_hints(type(section))
    for f in dataclasses.fields(section):
        bounds, value = f.metadata.get("bounds"), getattr(section, f.name)
        if isinstance(value, dict):
            problems += [problem for item, number in value.items()  # the first bad one: a mapping can be long
                         for problem in _number_problems(f"{key(f.name)}[{item}]", number, bounds)][:1]
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{key(f.name)} must be a finite number, got {value}")
        elif bounds is not None and isinstance(value, (int, float)):  # not None, nor a word such as auto
            problem = bounds.problem(key(f.name), value, optional=type(None) in typing.get_args(types[f.name]))
            problems += [problem] if problem else []
    return problems


def _number_problems(name: str, value, bounds: Bounds | None) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{name} must be a finite number, got {value}"]
    problem = bounds.problem(name, value, optional=False) if bounds is not None else None
    return [problem] if problem else []


def setting(default=_UNSET, low=None, high=None, *, help: str, factory=None, low_open=False, high_open=False,
            cap=None, null="", flag=None, http=None, resume=False, finetune: Finetune = "base"):
    """A dataclass field declared with its range (for numbers: low..high, cap a sanity limit above which a value is
    a typo; None passes where the type allows it), its help and its policies (Policy)."""
    metadata = {"policy": Policy(help, flag, http, resume, finetune)}
    if low is not None or high is not None or cap is not None:
        metadata["bounds"] = Bounds(low, high, low_open, high_open, cap, null)
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def policy(section_type: type, name: str) -> Policy:
    return next(f for f in dataclasses.fields(section_type) if f.name == name).metadata["policy"]


def declared(section_type: type) -> list[tuple[str, object, dataclasses.Field, Policy]]:
    """Each field of a section as (name, type, field, policy), in declaration order."""
    types = typing.get_type_hints(section_type)
    return [(f.name, types[f.name], f, f.metadata["policy"]) for f in dataclasses.fields(section_type)]


def default_of(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
