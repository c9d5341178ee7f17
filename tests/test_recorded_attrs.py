"""One schema for what a trial records: every user attr is an `Attr` of nas/record/attrs.py,
and no other module of nas/ names one by its key."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from nas.record import attrs
from nas.trial.objectives import DIRECTIONS
from nas.trial.result import TrialResult

NAS = Path(__file__).resolve().parent.parent / "nas"
KEYS = {attr.key for attr in attrs.TRIAL_ATTRS} | {attrs.SPACE.key, attrs.SUPERNET.key}
# Calls that take a user attr's key as their first argument.
KEYED_CALLS = {"set_user_attr", "get"}


def test_every_measure_a_trial_records_has_an_attr():
    measures = {f.name for f in fields(TrialResult)} - set(DIRECTIONS)
    assert measures <= KEYS, sorted(measures - KEYS)


def test_keys_are_unique():
    keys = [attr.key for attr in attrs.TRIAL_ATTRS]
    assert len(keys) == len(set(keys))


def test_a_missing_attr_reads_as_its_missing_value_and_a_fresh_copy():
    old_trial = {"train_epochs": 5}
    assert attrs.TRAIN_EPOCHS.of(old_trial) == 5
    assert attrs.DENSE_SLICED.of(old_trial) is False
    assert attrs.RECALIBRATION_EPOCHS.of(old_trial) == 0
    channels = attrs.REMOVED_CHANNELS.of(old_trial)
    channels.append(["conv", [0]])
    assert attrs.REMOVED_CHANNELS.of(old_trial) == []


def user_attr_keys_named(path: Path) -> list[str]:
    """String keys of user attrs that the module at `path` names itself: subscripts and
    `in` tests of `.user_attrs`, `.get`/`.set_user_attr` calls on them, and dict
    literals handed over as `user_attrs=`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        keys: list[ast.AST] = []
        if isinstance(node, ast.Subscript) and _is_user_attrs(node.value):
            keys = [node.slice]
        elif isinstance(node, ast.Compare) and any(_is_user_attrs(c) for c in node.comparators):
            keys = [node.left]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if (
                node.func.attr in KEYED_CALLS
                and node.args
                and (node.func.attr == "set_user_attr" or _is_user_attrs(node.func.value))
            ):
                keys = [node.args[0]]
            for keyword in node.keywords:
                if keyword.arg == "user_attrs" and isinstance(keyword.value, ast.Dict):
                    keys += [key for key in keyword.value.keys if key is not None]
        found += [k.value for k in keys if isinstance(k, ast.Constant) and k.value in KEYS]
    return found


def _is_user_attrs(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "user_attrs"


SOURCES = sorted(p for p in NAS.rglob("*.py") if p != NAS / "record" / "attrs.py")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(NAS)))
def test_no_module_names_a_user_attr_by_its_key(path):
    assert not user_attr_keys_named(path), f"use nas.record.attrs in {path.relative_to(NAS)}"


def test_the_check_sees_every_way_of_naming_a_key(tmp_path):
    source = tmp_path / "reader.py"
    source.write_text(
        'a = trial.user_attrs["arch"]\n'
        'b = trial.user_attrs.get("train_epochs", 0)\n'
        'c = "sibling_of" in trial.user_attrs\n'
        'trial.set_user_attr("fail_reason", "x")\n'
        'study.enqueue_trial({}, user_attrs={"polish_of": 1})\n'
        'd = row["arch"]\n'  # not a user attr: a table's column
    )
    assert user_attr_keys_named(source) == [
        "arch", "train_epochs", "sibling_of", "fail_reason", "polish_of"
    ]  # fmt: skip
