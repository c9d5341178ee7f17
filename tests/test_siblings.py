"""Siblings: a freshly trained architecture is queued again at higher sparsities."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from nas.siblings import Siblings, sparser

GRID = FloatDistribution(0.0, 0.95, step=0.05)


def test_a_sparser_value_halves_the_density_on_the_grid_and_within_bounds():
    assert sparser(0.6, 0.5, GRID) == 0.8
    assert sparser(0.5, 0.25, GRID) == pytest.approx(0.9)  # 0.875 snaps to the grid
    assert sparser(0.9, 0.25, GRID) == 0.95  # capped at the grid's high
    assert sparser(0.5, 0.5, FloatDistribution(0.0, 0.99)) == 0.75


def finished_trial(cached: bool, accuracy: float = 0.9) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        params={"arch.width": 32, "sparsity.hidden": 0.6, "sparsity.head": 0.2},
        distributions={
            "arch.width": CategoricalDistribution([16, 32]),
            "sparsity.hidden": GRID,
            "sparsity.head": GRID,
        },
        values=[accuracy, 100, 1000],
        user_attrs={"dense_cached": cached},
    )


def test_a_trial_that_trained_densely_queues_its_architecture_sparser():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    trial = finished_trial(cached=False)
    study.add_trial(trial)
    Siblings(2).queue(study, study.trials[0], room=5)
    queued = [
        t.system_attrs["fixed_params"] for t in study.get_trials(states=(TrialState.WAITING,))
    ]
    assert queued == [
        {"arch.width": 32, "sparsity.hidden": 0.8, "sparsity.head": 0.6},
        {"arch.width": 32, "sparsity.hidden": 0.9, "sparsity.head": 0.8},
    ]


def test_cached_trials_and_a_count_of_zero_queue_nothing():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trial(finished_trial(cached=True))
    study.add_trial(finished_trial(cached=False))
    Siblings(2).queue(study, study.trials[0], room=5)
    Siblings(0).queue(study, study.trials[1], room=5)
    assert not study.get_trials(states=(TrialState.WAITING,))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="study.siblings"):
        Siblings(-1)
    with pytest.raises(ValueError, match="study.sibling_factor"):
        Siblings(1, factor=1.5)


def test_no_more_siblings_are_queued_than_the_budget_has_room_for():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trial(finished_trial(cached=False))
    Siblings(2).queue(study, study.trials[0], room=1)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1
