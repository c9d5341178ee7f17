"""One source for every default (conf/) and one checker for every setting (nas.checks):
the settings dataclasses read exactly the keys conf/ gives them, and refuse a value of the
wrong type or out of bounds in one line naming its key."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from pathlib import Path

import pytest

from nas.checks import (
    BadSetting,
    above,
    at_least,
    check_fields,
    checked,
    from_node,
    one_of,
    setting,
    within,
)
from nas.errors import UsageError
from tests.conftest import CONF_DIR, SETTINGS_NODES, composed, conf_defaults

# Every composition that gives the settings nodes other keys: each option of the groups
# that hold them, plain and under the smoke run's overrides.
COMPOSITIONS = [
    (f"{group}={path.stem}", *debug)
    for group in ("study", "train")
    for path in sorted((CONF_DIR / group).glob("*.yaml"))
    for debug in ((), ("+debug=smoke",))
]


def node_of(config: dict, node: str) -> dict | None:
    """The node at dotted `node` of a composed `config`, or None where it has none."""
    for key in node.split("."):
        config = config.get(key) if isinstance(config, dict) else None
    return config


@pytest.mark.parametrize("overrides", COMPOSITIONS, ids=" ".join)
def test_every_key_of_a_settings_node_is_a_field_of_the_settings_that_read_it(overrides):
    config = composed(*overrides)
    for node, (settings, _, besides) in SETTINGS_NODES.items():
        keys = node_of(config, node)
        if keys is None:
            assert node == "train.supernet", f"conf/ gives no {node}"
            continue
        fields = {field.name for field in dataclasses.fields(settings)}
        assert set(keys) - set(besides) == fields, (
            f"{node}: keys only in conf/ {sorted(set(keys) - set(besides) - fields)}, fields "
            f"only in {settings.__name__} {sorted(fields - set(keys))}"
        )


def test_the_settings_hold_no_default_of_their_own():
    for settings, _, _ in SETTINGS_NODES.values():
        for field in dataclasses.fields(settings):
            assert field.default is dataclasses.MISSING, f"{settings.__name__}.{field.name}"
            assert field.default_factory is dataclasses.MISSING, settings.__name__


# A value of another type for each kind of field.
WRONG = {
    int: [True, 1.5, "3"],
    float: [True, "0.5", math.nan, math.inf],
    bool: ["yes", 1, None],
    str: [5, None],
    tuple[str, ...]: ["accuracy", [1]],
    Mapping[str, float]: [[1.0]],
}


def wrong_values():
    """(node, key, value) for every field of every settings and each wrong value of its kind."""
    for node, (settings, _, _) in SETTINGS_NODES.items():
        for name, kind in typing.get_type_hints(settings).items():
            inner = next((k for k in typing.get_args(kind) if k is not type(None)), kind)
            optional = type(None) in typing.get_args(kind)
            for value in WRONG[inner if optional else kind]:
                if value is not None or not optional:
                    yield node, name, value


@pytest.mark.parametrize(("node", "key", "value"), list(wrong_values()), ids=repr)
def test_every_setting_refuses_a_value_of_another_type_naming_its_key(node, key, value):
    settings, _, _ = SETTINGS_NODES[node]
    with pytest.raises(BadSetting, match=rf"^{node}\.{key}(\.\w+)? must be .*, got "):
        settings(**conf_defaults(node, **{key: value}))


@pytest.mark.parametrize(
    ("kind", "bounds", "value", "message"),
    [
        (int, (at_least(1),), True, "k must be a whole number >= 1, got True"),
        (int, (at_least(1),), 2.0, "k must be a whole number >= 1, got 2.0"),
        (int, (at_least(1),), "abc", "k must be a whole number >= 1, got 'abc'"),
        (int, (at_least(1),), 0, "k must be a whole number >= 1, got 0"),
        (float, (above(0),), "fast", "k must be a number > 0, got 'fast'"),
        (float, (above(0),), False, "k must be a number > 0, got False"),
        (float, (), math.nan, "k must be a number, got nan"),
        (float, (within(0, 1, "[)"),), 1, "k must be a number in [0, 1), got 1"),
        (float, (within(0, 1, "(]"),), 0.0, "k must be a number in (0, 1], got 0.0"),
        (float | None, (within(0, 1),), 2, "k must be a number in [0, 1] or null, got 2"),
        (bool, (), "true", "k must be true or false, got 'true'"),
        (bool, (), 0, "k must be true or false, got 0"),
        (str, (one_of("a", "b"),), "c", "k must be one of a, b, got 'c'"),
        (str | None, (), 1, "k must be a string or null, got 1"),
        (tuple[str, ...], (), "ab", "k must be a list of strings, got 'ab'"),
        (tuple[float, ...], [above(0)], [2, 0], "k must be a list of numbers > 0, got [2, 0]"),
        (Mapping[str, float], (), [1.0], "k must be a mapping of names to numbers, got [1.0]"),
        (Mapping[str, float], (), {"x": "up"}, "k.x must be a number, got 'up'"),
    ],
)  # fmt: skip
def test_the_checker_refuses_a_value_in_one_line_naming_its_key(kind, bounds, value, message):
    with pytest.raises(BadSetting) as error:
        checked("k", value, kind, *bounds)
    assert str(error.value) == message
    assert isinstance(error.value, ValueError) and isinstance(error.value, UsageError)


@pytest.mark.parametrize(
    ("kind", "bounds", "value"),
    [
        (int, (at_least(1),), 1),
        (float, (above(0),), 2),  # a whole number is a number
        (float, (within(0, 1, "[)"),), 0.0),
        (float | None, (within(0, 1),), None),
        (bool, (), False),
        (str, (one_of("a", "b"),), "b"),
        (tuple[str, ...], (), ("a", "b")),
        (tuple[float, ...], (), []),
        (Mapping[str, float], (within(-1, 1),), {"x": 0.5, "y": -1}),
    ],
)  # fmt: skip
def test_the_checker_passes_a_good_value_through(kind, bounds, value):
    assert checked("k", value, kind, *bounds) is value


@dataclasses.dataclass(frozen=True)
class Example:
    count: int = setting(at_least(0))
    name: str | None

    def __post_init__(self) -> None:
        check_fields(self, "group.node")


def test_a_settings_dataclass_is_checked_by_its_annotations_and_bounds():
    assert Example(0, None) == Example(count=0, name=None)
    with pytest.raises(BadSetting, match=r"^group.node.count must be a whole number >= 0, got -1$"):
        Example(-1, "a")
    with pytest.raises(BadSetting, match=r"^group.node.name must be a string or null, got 1$"):
        Example(1, 1)


def test_a_node_missing_a_key_or_holding_an_unknown_one_is_refused_naming_it():
    assert from_node(Example, {"count": 1, "name": "a", "other": 2}, "n", besides=("other",))
    with pytest.raises(BadSetting, match=r"^n.name is not set$"):
        from_node(Example, {"count": 1}, "n")
    with pytest.raises(BadSetting, match=r"^n has no setting colour, size$"):
        from_node(Example, {"count": 1, "name": None, "size": 2, "colour": 3}, "n")


def test_a_field_of_a_kind_the_checker_does_not_know_is_a_programming_error():
    with pytest.raises(TypeError, match="no check for values of type"):
        checked("k", Path("."), Path)
