"""Revisits: the end of a budget goes to architectures of the front, at new sparsities."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nas.search.revisits import Revisits, architecture_params
from nas.search.settings import StudySettings
from nas.studies.joint_search import run_search
from tests.conftest import conf_defaults
from tests.front_trials import DIRECTIONS, finished, four_trials, waiting


@pytest.fixture
def study() -> optuna.Study:
    return four_trials()


def test_the_front_architecture_tried_least_is_queued_with_its_sparsity_left_open(study):
    Revisits(0.25).queue(study, cached=lambda params: True)
    [queued] = waiting(study)
    assert queued.system_attrs["fixed_params"] == {"arch.width": 16}
    assert queued.user_attrs == {"revisit_of": 2}
    Revisits(0.25).queue(study, cached=lambda params: True)
    assert len(waiting(study)) == 1, "nothing is queued while a trial waits"


def test_among_equally_tried_architectures_the_most_accurate_goes_first(study):
    study.add_trial(finished(16, 0.95, 0.70, 50))  # width 16 now tried twice too
    Revisits(0.25).queue(study, cached=lambda params: True)
    assert waiting(study)[0].system_attrs["fixed_params"] == {"arch.width": 32}


def test_only_architectures_whose_dense_weights_are_cached_are_revisited(study):
    Revisits(0.25).queue(study, cached=lambda params: params["arch.width"] == 32)
    assert waiting(study)[0].system_attrs["fixed_params"] == {"arch.width": 32}
    study = optuna.create_study(directions=DIRECTIONS)
    study.add_trial(finished(32, 0.5, 0.95, 1000))
    Revisits(0.25).queue(study, cached=lambda params: False)
    assert not waiting(study)


def test_revisits_are_due_over_the_last_share_of_the_budget_only():
    assert Revisits(0.25).due(left=25, total=100)
    assert not Revisits(0.25).due(left=26, total=100)
    assert not Revisits(0.0).due(left=0, total=100)


@pytest.mark.parametrize("share", [1, -0.1, True, "half"])
def test_a_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError, match=r"study.revisit_share must be a number in \[0, 1\)"):
        StudySettings(**conf_defaults("study", revisit_share=share))


@pytest.mark.slow
def test_a_search_spends_its_last_share_on_cached_front_architectures(compose_config, tmp_path):
    cfg = compose_config(
        "+space=cnn", "+debug=smoke", "study.name=test", f"study.storage=sqlite:///{tmp_path}/s.db",
        "study.n_trials=100", "study.max_epochs=12", "study.revisit_share=0.5",
        "study.siblings=0", "study.warm_start=false", "sampler=random",
    )  # fmt: skip
    study = run_search(cfg, launch_dir=tmp_path, run_dir=tmp_path / "run")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    revisits = [t for t in trials if "revisit_of" in t.user_attrs]
    assert revisits, "the last half of the budget should revisit"
    spent_before = sum(t.user_attrs["train_epochs"] for t in trials[: trials.index(revisits[0])])
    assert spent_before >= 6  # not before the last half
    for trial in revisits:
        first = study.trials[trial.user_attrs["revisit_of"]]
        assert architecture_params(trial.params) == architecture_params(first.params)
        assert trial.user_attrs["dense_cached"] and trial.user_attrs["train_epochs"] == 1
    assert sum(t.user_attrs["train_epochs"] for t in trials) <= 12
