"""Polishing: the end of a budget runs the front's most accurate trials again, fine-tuned
longer."""

from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import TrialState

from nas.prune.methods import MagnitudePruning
from nas.search.constraints import Constraints
from nas.search.objective import trial_objective
from nas.search.polish import Polish
from nas.search.recorded import recorded_config, setting_changes
from nas.search.repeats import refuse_repeat
from nas.studies.joint_search import run_search
from nas.trial.early_exit import EarlyExit
from nas.trial.pipeline import TrialPipeline
from search_spaces.cnn import CNNSpace
from tests.front_trials import DISTRIBUTIONS, finished, four_trials, waiting
from tests.test_objective import PARAMS, SETTINGS


@pytest.fixture
def study() -> optuna.Study:
    return four_trials()


def test_the_most_accurate_front_trial_is_queued_with_its_parameters_and_the_polish_epochs(
    study,
):
    Polish(0.2, 5, "accurate").queue(study, affords=lambda params, epochs: True)
    [queued] = waiting(study)
    assert queued.system_attrs["fixed_params"] == study.trials[0].params
    assert queued.user_attrs == {"polish_of": 0, "finetune_epochs": 5}
    Polish(0.2, 5, "accurate").queue(study, affords=lambda params, epochs: True)
    assert len(waiting(study)) == 1, "nothing is queued while a trial waits"


def test_the_smallest_first_polishes_the_front_in_order_of_nonzero_parameters(study):
    """Front: trial 0 (1000 nonzero), 1 (200), 2 (100); trial 3 is dominated."""
    polished = []
    for _ in range(3):
        Polish(0.2, 5, "smallest").queue(study, affords=lambda params, epochs: True)
        [queued] = waiting(study)
        polished.append(queued.user_attrs["polish_of"])
        study.tell(study.ask(), [0.1, 10_000, 100_000])  # the polish runs, dominated
    assert polished == [2, 1, 0]


def test_a_trial_polished_once_and_a_polish_are_not_polished_again(study):
    study.add_trial(finished(32, 0.5, 0.97, 1000, **{"polish_of": 0, "finetune_epochs": 5}))
    Polish(0.2, 5, "accurate").queue(study, affords=lambda params, epochs: True)
    assert waiting(study)[0].user_attrs["polish_of"] == 1  # the next most accurate


def test_a_polish_the_budget_cannot_pay_for_is_not_queued(study):
    most_accurate = study.trials[0].params
    Polish(0.2, 5, "accurate").queue(study, affords=lambda params, epochs: params != most_accurate)
    assert not waiting(study), "the most accurate goes first or none does"


def test_siblings_fit_before_the_last_share_and_never_enter_it():
    polish = Polish(0.1, 5, "accurate")
    assert polish.room_before(left=8.2, total=60, cost=1.05) == 2
    assert polish.room_before(left=6.52, total=60, cost=1.05) == 0  # 5.47 is inside it
    assert polish.room_before(left=5.5, total=60, cost=1.05) == 0
    assert Polish(0.0, 5, "accurate").room_before(left=1.0, total=60, cost=1.05) is None, (
        "no reserve"
    )


def test_polishing_is_due_over_the_last_share_of_the_budget_only():
    assert Polish(0.25, 5, "accurate").due(left=25, total=100)
    assert not Polish(0.25, 5, "accurate").due(left=26, total=100)
    assert not Polish(0.0, 5, "accurate").due(left=0, total=100)


@pytest.mark.parametrize(
    ("share", "epochs", "order", "message"),
    [(1, 5, "accurate", "train.polish.share"), (-0.1, 5, "accurate", "train.polish.share"),
     (True, 5, "accurate", "share"), (0.2, 0, "accurate", "train.polish.epochs"),
     (0.2, 2.5, "accurate", "train.polish.epochs"),
     (0.2, 5, "sparsest", "train.polish.order.*one of accurate, smallest")],
)  # fmt: skip
def test_bad_polish_settings_are_refused(share, epochs, order, message):
    with pytest.raises(ValueError, match=message):
        Polish(share, epochs, order)


def test_a_polish_repeating_its_trials_parameters_is_not_refused_as_a_repeat(study):
    Polish(0.2, 5, "accurate").queue(study, affords=lambda params, epochs: True)
    polish = study.ask(fixed_distributions=DISTRIBUTIONS)
    refuse_repeat(polish)  # runs: no TrialPruned
    assert polish.params == study.trials[0].params
    study.enqueue_trial(study.trials[1].params)
    with pytest.raises(optuna.TrialPruned):
        refuse_repeat(study.ask(fixed_distributions=DISTRIBUTIONS))


@pytest.mark.slow
def test_a_weight_sharing_search_polishes_its_front_in_the_last_share(compose_config, tmp_path):
    cfg = compose_config(
        "+space=cnn", "+debug=smoke", "train=supernet", "train.supernet.epochs=1",
        "study.name=test", f"study.storage=sqlite:///{tmp_path}/s.db", "study.n_trials=100",
        "study.max_epochs=20", "train.polish.share=0.5", "train.polish.epochs=2",
        "study.dense_cache=0",  # every polish is sliced again: siblings would be due after it
        "space.channels=[8,16,32]",  # with 4, one tiny network is the whole front: one polish
    )  # fmt: skip
    study = run_search(cfg, launch_dir=tmp_path, run_dir=tmp_path / "run")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    polishes = [t for t in trials if "polish_of" in t.user_attrs]
    assert len(polishes) >= 2, "the last half of the budget should polish"
    supernet = study.user_attrs["supernet"]["train_epochs"]
    first = trials.index(polishes[0])
    spent_before = supernet + sum(t.user_attrs["train_epochs"] for t in trials[:first])
    assert spent_before >= 10, "not before the last half"
    assert polishes == trials[first : first + len(polishes)], "no sibling between polishes"
    spent = supernet
    for trial in trials:
        spent += trial.user_attrs["train_epochs"]
        assert "sibling_of" not in trial.user_attrs or spent <= 10, "a sibling in the last half"
    for polish in polishes:
        polished = study.trials[polish.user_attrs["polish_of"]]
        assert polish.params == polished.params
        assert polish.user_attrs["train_epochs"] == 2 + polish.user_attrs["recalibration_epochs"]
    assert len({p.user_attrs["polish_of"] for p in polishes}) == len(polishes)
    assert supernet + sum(t.user_attrs["train_epochs"] for t in trials) <= 20


@pytest.mark.slow
def test_a_finished_weight_sharing_search_leaves_no_queued_trial_and_no_point_twice(
    compose_config, tmp_path
):
    cfg = compose_config(
        "+space=cnn", "+debug=smoke", "train=supernet", "train.supernet.epochs=1",
        "study.name=test", f"study.storage=sqlite:///{tmp_path}/s.db", "study.n_trials=30",
        "seed=1",  # trial 27 polishes trial 22 at its ceiling: the same values, on the front
    )  # fmt: skip
    study = run_search(cfg, launch_dir=tmp_path, run_dir=tmp_path / "run")
    assert not study.get_trials(states=(TrialState.WAITING,)), "a polish queued after the last"
    polishes = [t for t in study.trials if "polish_of" in t.user_attrs]
    twins = [p for p in polishes if p.values == study.trials[p.user_attrs["polish_of"]].values]
    assert twins, "the smoke search should polish a trial at its ceiling (accuracy 1.0)"
    points = [tuple(trial.values) for trial in study.best_trials]
    assert len(points) == len(set(points)), "one network twice on the front"


def test_a_study_recorded_before_polishing_resumes_without_it_and_refuses_it():
    study = optuna.create_study()
    study.set_user_attr("train_config", {"epochs": 3, "finetune_epochs": 2})
    polish = {"share": 0.0, "epochs": 5, "order": "accurate"}
    train = {"epochs": 3, "finetune_epochs": 2, "polish": polish}
    assert setting_changes(study, {"train_config": train}) == []
    train["polish"]["share"] = 0.1
    assert setting_changes(study, {"train_config": train}) == ["train.polish.share 0.0 -> 0.1"]


def test_a_study_recorded_before_polishing_is_retrained_as_one_that_never_polishes():
    study = optuna.create_study()
    study.set_user_attr("train_config", {"epochs": 3, "finetune_epochs": 2})
    recorded = recorded_config(study, "train")
    polish = {"share": 0.0, "epochs": 5, "order": "accurate"}
    assert recorded == {"epochs": 3, "finetune_epochs": 2, "polish": polish}
    assert Polish(**recorded["polish"]).share == 0.0
    assert study.user_attrs["train_config"] == {"epochs": 3, "finetune_epochs": 2}  # a copy


def test_early_exit_judges_a_drawn_candidate_but_never_a_polish(tiny_splits):
    space = CNNSpace()
    pipe = TrialPipeline(space, tiny_splits, MagnitudePruning(), SETTINGS, torch.device("cpu"))
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[1.0, 1, 1]))  # dominates every candidate
    study.enqueue_trial(PARAMS)
    study.enqueue_trial(PARAMS, user_attrs={"polish_of": 0, "finetune_epochs": 2})
    objective = trial_objective(pipe, 0, early_exit=EarlyExit("dense", margin=0.0))
    study.optimize(objective, n_trials=2)
    drawn, polish = study.trials[1:]
    assert drawn.user_attrs["finetune_skipped"] and drawn.user_attrs["train_epochs"] == 1
    assert not polish.user_attrs["finetune_skipped"]
    assert polish.user_attrs["train_epochs"] == 1 + 2  # 1 dense epoch, then its own 2


class Measured:
    """What `Constraints.set` reads of a polish's result: its objective values."""

    def __init__(self, *values: float) -> None:
        self.measured = values

    def values(self, names) -> tuple[float, ...]:
        return self.measured


@pytest.mark.parametrize(("accuracy", "on_front"), [(0.95, False), (0.96, True)])
def test_a_polish_with_its_trials_values_is_not_a_second_front_point(study, accuracy, on_front):
    Polish(0.2, 5, "accurate").queue(study, affords=lambda params, epochs: True)  # of trial 0: 0.95
    polish = study.ask(fixed_distributions=DISTRIBUTIONS)
    Constraints(None, None, None).set(polish, Measured(accuracy, 1000, 10_000))
    study.tell(polish, [accuracy, 1000, 10_000])
    front = {trial.number for trial in study.best_trials}
    assert (polish.number in front, 0 in front) == (on_front, not on_front)


def test_of_two_polishes_queued_twice_by_racing_workers_the_first_runs_and_the_second_not(study):
    for _ in range(2):  # two workers queue the same polish at the same moment
        study.enqueue_trial(
            study.trials[0].params, user_attrs={"polish_of": 0, "finetune_epochs": 5}
        )
    first = study.ask(fixed_distributions=DISTRIBUTIONS)
    second = study.ask(fixed_distributions=DISTRIBUTIONS)  # both running at once
    with pytest.raises(optuna.TrialPruned):
        refuse_repeat(second)
    refuse_repeat(first)  # runs: the later copy is the repeat
    assert second.study.trials[second.number].user_attrs["repeats"] == first.number
