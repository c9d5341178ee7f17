"""Siblings: a freshly trained architecture is queued again at higher sparsities."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from nas.search.settings import StudySettings
from nas.search.siblings import Siblings, next_factor, scaled
from tests.conftest import conf_defaults

GRID = FloatDistribution(0.0, 0.95, step=0.05)


def test_a_scaled_value_scales_the_density_on_the_grid_and_within_bounds():
    assert scaled(0.6, 0.5, GRID) == 0.8
    assert scaled(0.5, 0.25, GRID) == pytest.approx(0.9)  # 0.875 snaps to the grid
    assert scaled(0.9, 0.25, GRID) == 0.95  # capped at the grid's high
    assert scaled(0.5, 0.5, FloatDistribution(0.0, 0.99)) == 0.75
    assert scaled(0.8, 2.0, GRID) == pytest.approx(0.6)  # denser
    assert scaled(0.3, 4.0, GRID) == 0.0  # capped at the grid's low


def finished_trial(
    cached: bool, accuracy: float = 0.9, hidden: float = 0.6, head: float = 0.2, **attrs
) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        params={"arch.width": 32, "sparsity.hidden": hidden, "sparsity.head": head},
        distributions={
            "arch.width": CategoricalDistribution([16, 32]),
            "sparsity.hidden": GRID,
            "sparsity.head": GRID,
        },
        values=[accuracy, 100, 1000],
        user_attrs={"dense_cached": cached, "dense_accuracy": 0.95, **attrs},
    )


def test_a_trial_that_trained_densely_queues_its_architecture_sparser():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    trial = finished_trial(cached=False)
    study.add_trial(trial)
    Siblings(2, 0.5, "sparser", 0.02).queue(study, study.trials[0], room=5)
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
    Siblings(2, 0.5, "sparser", 0.02).queue(study, study.trials[0], room=5)
    Siblings(0, 0.5, "sparser", 0.02).queue(study, study.trials[1], room=5)
    assert not study.get_trials(states=(TrialState.WAITING,))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("siblings", -1),
        ("sibling_factor", 1.5),
        ("sibling_rule", "denser"),
        ("sibling_tolerance", 2),
    ],
)
def test_bad_settings_are_refused(key, value):
    with pytest.raises(ValueError, match=f"study.{key} must be"):
        StudySettings(**conf_defaults("study", **{key: value}))


def test_no_more_siblings_are_queued_than_the_budget_has_room_for():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trial(finished_trial(cached=False))
    Siblings(2, 0.5, "sparser", 0.02).queue(study, study.trials[0], room=1)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1


def test_next_factor_goes_sparser_while_accuracy_holds_denser_while_it_breaks_else_bisects():
    assert next_factor([1.0], [], 0.5) == 0.5
    assert next_factor([1.0, 0.5], [], 0.5) == 0.25
    assert next_factor([], [1.0], 0.5) == 2.0
    assert next_factor([], [1.0, 2.0], 0.5) == 4.0
    assert next_factor([1.0], [0.25], 0.5) == pytest.approx(0.5)  # halfway in log density
    assert next_factor([2.0, 1.0], [0.5, 4.0], 0.5) == pytest.approx(0.5**0.5)


def queued(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.WAITING,))


def finish_queued(study: optuna.Study, accuracy: float) -> None:
    """Run the one waiting trial as a cached sibling scoring `accuracy`."""
    (waiting,) = queued(study)
    trial = study.ask()
    assert trial.number == waiting.number
    for name, distribution in study.trials[0].distributions.items():
        trial._suggest(name, distribution)
    trial.set_user_attr("dense_cached", True)
    trial.set_user_attr("dense_accuracy", 0.95)
    study.tell(trial, [accuracy, 100, 1000])


def test_the_knee_rule_queues_one_sibling_at_a_time_following_the_accuracy():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    siblings = Siblings(3, factor=0.5, rule="knee", tolerance=0.02)
    study.add_trial(finished_trial(cached=False, accuracy=0.94, hidden=0.6, head=0.2))
    siblings.queue(study, study.trials[0], room=5)
    (first,) = queued(study)  # held (0.94 >= 0.95 - 0.02): half the density
    assert first.system_attrs["fixed_params"]["sparsity.hidden"] == 0.8
    assert first.user_attrs == {"sibling_of": 0, "density_factor": 0.5}

    finish_queued(study, accuracy=0.80)  # broke: halfway back, density x 0.707
    siblings.queue(study, study.trials[1], room=5)
    (second,) = queued(study)
    assert second.user_attrs["density_factor"] == pytest.approx(0.5**0.5)
    assert second.system_attrs["fixed_params"]["sparsity.hidden"] == pytest.approx(0.7)

    finish_queued(study, accuracy=0.94)
    siblings.queue(study, study.trials[2], room=5)
    assert len(queued(study)) == 1  # the third and last
    finish_queued(study, accuracy=0.94)
    siblings.queue(study, study.trials[3], room=5)
    assert not queued(study)


def test_the_knee_rule_goes_denser_when_the_first_trial_broke():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trial(finished_trial(cached=False, accuracy=0.5, hidden=0.8, head=0.4))
    Siblings(2, 0.5, "knee", 0.02).queue(study, study.trials[0], room=5)
    (sibling,) = queued(study)
    assert sibling.system_attrs["fixed_params"]["sparsity.hidden"] == pytest.approx(0.6)
    assert sibling.user_attrs["density_factor"] == 2.0


def test_siblings_of_the_sparser_rule_queue_no_siblings_of_their_own():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trial(finished_trial(cached=False, sibling_of=0))  # trained again elsewhere
    Siblings(2, 0.5, "sparser", 0.02).queue(study, study.trials[0], room=5)
    assert not queued(study)


def test_trials_already_waiting_count_against_the_room():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trial(finished_trial(cached=False))
    study.enqueue_trial({"arch.width": 16, "sparsity.hidden": 0.5, "sparsity.head": 0.5})
    Siblings(2, 0.5, "sparser", 0.02).queue(study, study.trials[0], room=2)
    waiting = queued(study)
    assert len(waiting) == 2  # the one already waiting and one sibling
    assert [t.user_attrs.get("density_factor") for t in waiting] == [None, 0.5]
