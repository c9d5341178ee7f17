"""A trial's constraints: the budgets of nonzero parameters and FLOPs, and the accuracy
floor above chance that keeps chance-level networks off a default front."""

from __future__ import annotations

import pytest
import torch

from nas.search.constraints import AccuracyFloor, Constraints
from nas.search.settings import StudySettings
from tests.conftest import conf_defaults

# 750 validation labels, 75 of each of 10 classes (the quick start's are near that)
BALANCED = torch.arange(10).repeat(75)


class Recorded:
    """A running trial that is no polish, as far as its constraints go."""

    def __init__(self) -> None:
        self.constraints: dict[str, float] = {}
        self.user_attrs: dict = {}

    def set_constraint(self, key: str, value: float) -> None:
        self.constraints[key] = value


def constraints_of(result: dict, labels=BALANCED, **study) -> dict[str, float]:
    """The constraints a trial measuring `result` gets under conf's study defaults
    changed by `study`."""
    trial = Recorded()
    opts = StudySettings(**conf_defaults("study", **study))
    Constraints.of(opts, labels).set(trial, Result(**result))
    return trial.constraints


class Result:
    """What `Constraints.set` reads of a trial's result."""

    def __init__(self, accuracy, dense_accuracy, nonzero_params=100, flops=1000) -> None:
        self.accuracy, self.dense_accuracy = accuracy, dense_accuracy
        self.nonzero_params, self.flops = nonzero_params, flops


def test_chance_is_what_always_answering_the_commonest_validation_class_scores():
    floor = AccuracyFloor.of(0.5, torch.tensor([0, 1, 1, 2]))
    assert (floor.chance, floor.step) == (0.5, 0.25)


def test_by_default_the_quick_starts_chance_level_networks_are_infeasible():
    # trials 2 and 11 of the quick start (0.3427 and 0.3520, their dense networks near 0.96)
    for accuracy in (0.3427, 0.3520):
        assert constraints_of({"accuracy": accuracy, "dense_accuracy": 0.96}) == {
            "min_accuracy_kept": pytest.approx(0.1 + 0.5 * 0.86 - accuracy)
        }
    # trials 14 and 5 (0.6093, 0.6600) are weak, not chance-level: feasible
    for accuracy in (0.6093, 0.6600):
        assert (
            constraints_of({"accuracy": accuracy, "dense_accuracy": 0.96})["min_accuracy_kept"] < 0
        )


def test_the_floor_is_measured_from_chance_not_from_zero():
    # two classes: half of the dense 0.9 (0.45) is below chance; half its margin is 0.7
    binary = torch.tensor([0, 1] * 50)
    result = {"accuracy": 0.6, "dense_accuracy": 0.9}
    constraints = constraints_of(result, labels=binary, min_accuracy_kept=0.5)
    assert constraints["min_accuracy_kept"] == pytest.approx(0.1)


def test_a_network_at_chance_is_infeasible_even_when_its_dense_network_is():
    collapsed = {"accuracy": 0.1, "dense_accuracy": 0.1}  # always the commonest class
    assert constraints_of(collapsed, min_accuracy_kept=0.5) == {
        "min_accuracy_kept": pytest.approx(1 / 750)
    }
    one_more = {"accuracy": 76 / 750, "dense_accuracy": 0.1}  # one image more: no float noise
    assert constraints_of(one_more, min_accuracy_kept=0.5) == {"min_accuracy_kept": 0}


def test_a_null_floor_sets_no_constraint_and_budgets_set_theirs():
    result = {"accuracy": 0.1, "dense_accuracy": 0.9, "nonzero_params": 120, "flops": 900}
    assert constraints_of(result, min_accuracy_kept=None) == {}
    limits = {"min_accuracy_kept": None, "max_nonzero_params": 100, "max_flops": 1000}
    assert constraints_of(result, **limits) == {"max_nonzero_params": 20, "max_flops": -100}
