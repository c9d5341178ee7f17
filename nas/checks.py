"""Config values checked against the types their settings declare: one checker, so that
every bad value is refused alike, in one line naming its key. The values themselves live
in conf/ only; a settings dataclass declares each field's type and bounds (`setting`) and
checks them all with `check_fields`. Imports only `nas.errors`."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.errors import UsageError

BOUNDS = "bounds"  # the metadata key of a field's bounds


class BadSetting(UsageError, ValueError):
    """A config value of the wrong type or out of bounds: to the command line a one-line
    UsageError, to code that builds settings itself a ValueError."""


@dataclass(frozen=True)
class Bound:
    """A limit on a value: `holds(value)`; `text` says what a value within it is, after its
    kind (`>= 1`, `in [0, 1)`), or instead of its kind when `whole` (`one of a, b`)."""

    text: str
    holds: Callable[[Any], bool]
    whole: bool = False


def at_least(low: float) -> Bound:
    """Values of `low` or more."""
    return Bound(f">= {low}", lambda value: value >= low)


def above(low: float) -> Bound:
    """Values of more than `low`."""
    return Bound(f"> {low}", lambda value: value > low)


def within(low: float, high: float, ends: str = "[]") -> Bound:
    """Values from `low` to `high`, each end included (`[`, `]`) or not (`(`, `)`)."""
    opens, closes = ends
    text = f"in {opens}{low}, {high}{closes}"
    return Bound(
        text,
        lambda value: (
            (low <= value if opens == "[" else low < value)
            and (value <= high if closes == "]" else value < high)
        ),
    )


def one_of(*choices: Any) -> Bound:
    """Values among `choices`."""
    return Bound(
        f"one of {', '.join(map(str, choices))}", lambda value: value in choices, whole=True
    )


def setting(*bounds: Bound) -> Any:
    """A dataclass field without a default (conf/ holds it) whose value `check_fields`
    holds to `bounds`, besides its annotated type."""
    return dataclasses.field(metadata={BOUNDS: bounds})


def check_fields(settings: Any, prefix: str) -> None:
    """Raise BadSetting unless every field of the dataclass `settings` holds a value of its
    annotated type within the bounds its `setting` declares; the key of field `name` is
    `<prefix>.<name>`."""
    hints = typing.get_type_hints(type(settings))
    for field in dataclasses.fields(settings):
        bounds = field.metadata.get(BOUNDS, ())
        checked(f"{prefix}.{field.name}", getattr(settings, field.name), hints[field.name], *bounds)


def _number(value: Any) -> bool:
    """Whether `value` is a finite int or float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole_number(value: Any) -> bool:
    """Whether `value` is an int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


# Each scalar kind: what one value and several are called, and which values are of it.
KINDS: dict[type, tuple[str, str, Callable[[Any], bool]]] = {
    bool: ("true or false", "true or false", lambda value: isinstance(value, bool)),
    int: ("a whole number", "whole numbers", _whole_number),
    float: ("a number", "numbers", _number),
    str: ("a string", "strings", lambda value: isinstance(value, str)),
}


def checked(key: str, value: Any, kind: Any, *bounds: Bound) -> Any:
    """`value`, the config value at `key`, if it is of type `kind` within `bounds`; else
    BadSetting: `<key> must be <what>, got <value>`. Kinds: bool; int (a whole number,
    not a bool); float (a finite int or float, not a bool); str; `X | None`;
    `tuple[X, ...]` (a list or tuple, `bounds` on each item); `Mapping[str, X]` (`bounds`
    on each value, whose key is `<key>.<name>`)."""
    if not _fits(key, value, kind, bounds):
        raise BadSetting(f"{key} must be {_describe(kind, bounds)}, got {value!r}")
    return value


def _fits(key: str, value: Any, kind: Any, bounds: Sequence[Bound]) -> bool:
    """Whether `value` is of type `kind` within `bounds`; a mapping's bad value raises
    BadSetting under its own key."""
    if _optional(kind):
        return value is None or _fits(key, value, _optional(kind), bounds)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        items = isinstance(value, Sequence) and not isinstance(value, str)
        return items and all(_fits(key, item, args[0], bounds) for item in value)
    if origin is Mapping:
        if not isinstance(value, Mapping) or not all(isinstance(name, str) for name in value):
            return False
        for name, item in value.items():
            checked(f"{key}.{name}", item, args[1], *bounds)
        return True
    if kind not in KINDS:
        raise TypeError(f"{key}: no check for values of type {kind!r}")
    return KINDS[kind][2](value) and all(bound.holds(value) for bound in bounds)


def _optional(kind: Any) -> Any:
    """X for `X | None`, else None."""
    if typing.get_origin(kind) not in (typing.Union, types.UnionType):
        return None
    (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return inner


def _describe(kind: Any, bounds: Sequence[Bound] = (), plural: bool = False) -> str:
    """What a value of `kind` within `bounds` is, as an error message says it."""
    if _optional(kind):
        return f"{_describe(_optional(kind), bounds, plural)} or null"
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        return f"a list of {_describe(args[0], bounds, plural=True)}"
    if origin is Mapping:
        return f"a mapping of names to {_describe(args[1], bounds, plural=True)}"
    whole = [bound.text for bound in bounds if bound.whole]
    if whole:
        return ("values " if plural else "") + " and ".join(whole)
    one, several, _ = KINDS[kind]
    return " ".join([several if plural else one, *(bound.text for bound in bounds)])


def from_node(cls: type, node: Mapping[str, Any], prefix: str, besides: Sequence[str] = ()):
    """The settings dataclass `cls` of the config node at `prefix`, its fields taken from
    the node's keys but those in `besides` (read elsewhere); BadSetting for a key the node
    lacks or `cls` does not know."""
    names = [field.name for field in dataclasses.fields(cls)]
    missing = [name for name in names if name not in node]
    if missing:
        raise BadSetting(f"{prefix}.{missing[0]} is not set")
    unknown = sorted(set(node) - set(names) - set(besides))
    if unknown:
        raise BadSetting(f"{prefix} has no setting {', '.join(unknown)}")
    return cls(**{name: node[name] for name in names})
