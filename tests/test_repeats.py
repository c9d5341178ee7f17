"""No trial repeats another's parameters, and a small budget trains several architectures."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from nas.search.callbacks import RepeatStreak, TrialBudget
from nas.search.repeats import refuse_repeat, repeated_trial
from nas.search.revisits import Revisits, architecture_key
from nas.search.siblings import Siblings, sibling_room
from nas.studies.joint_search import run_search

DIRECTIONS = ["maximize", "minimize", "minimize"]
GRID = FloatDistribution(0.0, 0.95, step=0.05)
CAPPED = FloatDistribution(0.0, 0.35, step=0.05)  # a layer_high cap, from `nas sensitivity`


def waiting(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.WAITING,))


def finished_arch(width: int) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        params={"arch.width": width, "sparsity.overall": 0.5},
        distributions={
            "arch.width": CategoricalDistribution([16, 32]),
            "sparsity.overall": FloatDistribution(0.0, 0.9),
        },
        values=[0.9, 100, 1000],
    )


def draw_architecture_32(
    study: optuna.Study, grid: FloatDistribution, hidden: float, head: float, **attrs
) -> optuna.Trial:
    """Start a trial queued with width 32 alone (as the warm start and revisits queue
    theirs) that draws sparsities `hidden` and `head` from `grid`; returns it RUNNING."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.sampler = optuna.samplers.PartialFixedSampler(
            {"sparsity.hidden": hidden, "sparsity.head": head}, optuna.samplers.RandomSampler()
        )
    study.enqueue_trial({"arch.width": 32}, user_attrs=attrs)
    trial = study.ask()
    trial.suggest_categorical("arch.width", [16, 32])
    for name in ("sparsity.hidden", "sparsity.head"):
        trial.suggest_float(name, grid.low, grid.high, step=grid.step)
    return trial


def test_siblings_clipped_to_the_cap_of_every_layer_equal_their_parent_and_are_not_queued():
    study = optuna.create_study(directions=DIRECTIONS)
    parent = draw_architecture_32(study, CAPPED, hidden=0.35, head=0.35, dense_cached=False)
    study.tell(parent, [0.9, 100, 1000])
    Siblings(2, 0.5, "sparser", 0.02).queue(study, study.trials[0], room=5)
    assert not waiting(study), "a sibling with its parent's parameters was queued"


def test_a_sibling_equal_to_a_running_revisit_is_not_queued():
    study = optuna.create_study(directions=DIRECTIONS)
    parent = draw_architecture_32(study, GRID, hidden=0.6, head=0.2, dense_cached=False)
    study.tell(parent, [0.9, 100, 1000])
    draw_architecture_32(study, GRID, hidden=0.8, head=0.6, revisit_of=0)  # runs elsewhere
    Siblings(2, 0.5, "sparser", 0.02).queue(
        study, study.trials[0], room=5
    )  # at 0.8/0.6 and 0.9/0.8
    queued = [trial.system_attrs["fixed_params"] for trial in waiting(study)]
    assert queued == [{"arch.width": 32, "sparsity.hidden": 0.9, "sparsity.head": 0.8}]


def test_a_trial_repeats_a_finished_running_or_waiting_one_but_not_a_failed_one():
    study = optuna.create_study(directions=DIRECTIONS)
    study.add_trial(finished_arch(16))
    study.enqueue_trial({"arch.width": 32})
    running = study.ask()  # queued with its architecture only, it draws its sparsity
    running.suggest_categorical("arch.width", [16, 32])
    drawn = running.suggest_float("sparsity.overall", 0.0, 0.9)
    study.enqueue_trial({"arch.width": 32, "sparsity.overall": 0.25})
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"arch.width": 16, "sparsity.overall": 0.75},
            distributions=finished_arch(16).distributions,
        )
    )
    assert repeated_trial(study, {"arch.width": 16, "sparsity.overall": 0.5}).number == 0
    assert repeated_trial(study, {"sparsity.overall": drawn + 1e-9, "arch.width": 32}).number == 1
    assert repeated_trial(study, {"arch.width": 32, "sparsity.overall": drawn}, besides=1) is None
    assert repeated_trial(study, {"arch.width": 32, "sparsity.overall": 0.25}).number == 2
    assert repeated_trial(study, {"arch.width": 16, "sparsity.overall": 0.75}) is None
    assert repeated_trial(study, {"arch.width": 16}) is None


def test_a_revisit_is_not_queued_while_a_trial_of_its_parameters_runs():
    study = optuna.create_study(directions=DIRECTIONS)
    study.add_trial(finished_arch(32))
    study.enqueue_trial({"arch.width": 32})
    study.ask()  # another worker's revisit of width 32, before it draws its sparsity
    Revisits(0.5).queue(study, cached=lambda params: True)
    assert not waiting(study)


SAFETY = 50  # draws at most, should the callbacks fail to stop a study


def draw_from(choices: list[int]) -> Callable[[optuna.Trial], tuple[float, float, float]]:
    """An objective that draws x from `choices` and refuses a draw repeating a trial's."""

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        x = trial.suggest_categorical("x", choices)
        refuse_repeat(trial)
        return float(x), 1.0, 1.0

    return objective


def test_a_draw_that_repeats_an_existing_trial_is_not_run_and_the_sampler_draws_again():
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(directions=DIRECTIONS, sampler=sampler)
    repeats = RepeatStreak(limit=50)
    study.optimize(draw_from([0, 1, 2]), n_trials=SAFETY, callbacks=[TrialBudget(3), repeats])
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(trial.params["x"] for trial in finished) == [0, 1, 2]
    skipped = study.get_trials(states=(TrialState.PRUNED,))
    assert skipped, "seed 0 draws some x twice"
    for trial in skipped:
        assert study.trials[trial.user_attrs["repeats"]].params == trial.params
    assert not repeats.tripped


def test_a_sampler_that_finds_nothing_new_stops_the_search():
    study = optuna.create_study(directions=DIRECTIONS)
    repeats = RepeatStreak(limit=4)
    study.optimize(draw_from([0]), n_trials=SAFETY, callbacks=[TrialBudget(2), repeats])
    assert repeats.tripped
    assert "4 draws in a row repeated" in repeats.message()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] + [TrialState.PRUNED] * 4


def test_siblings_leave_a_trial_to_start_for_each_architecture_finished():
    study = optuna.create_study(directions=DIRECTIONS)
    study.add_trial(finished_arch(32))
    assert sibling_room(study, remaining=2) == 1
    study.add_trial(finished_arch(32))
    study.add_trial(finished_arch(16))
    assert sibling_room(study, remaining=5) == 3


@pytest.mark.slow
def test_three_trials_with_warm_start_and_two_siblings_train_two_architectures(
    compose_config, tmp_path
):
    cfg = compose_config(
        "+space=cnn", "+debug=smoke", "study.name=small", "study.n_trials=3",
        "study.siblings=2", "study.warm_start=true", f"study.storage=sqlite:///{tmp_path}/s.db",
    )  # fmt: skip
    study = run_search(cfg, tmp_path, tmp_path / "run")
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 3
    assert len({architecture_key(trial.params) for trial in finished}) >= 2


def test_of_two_running_trials_that_drew_the_same_parameters_neither_is_let_through():
    """A drawn trial's parameters show only once drawn: a later trial that checked before
    an earlier one drew runs, so the earlier one must still yield to it."""
    study = optuna.create_study(directions=DIRECTIONS)
    earlier, later = study.ask(), study.ask()
    for trial in (later, earlier):  # the later one draws (and is checked) first
        trial.suggest_categorical("arch.width", [32])
        trial.suggest_float("sparsity.overall", 0.5, 0.5)
    with pytest.raises(optuna.TrialPruned):
        refuse_repeat(earlier)
