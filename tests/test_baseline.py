"""Baselines: one architecture pruned by a heuristic, and the two-stage habit, as studies."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nas.errors import SearchInterrupted, UsageError
from nas.search.reference import reference_candidate
from nas.studies.baseline import dense_front, models_in_budget, run_baseline, share, sparsity_levels
from nas.trial.pipeline import TrialPipeline
from search_spaces.cnn import CNNSpace
from tests.conftest import assert_one_line_error, forked_nas


def test_sparsity_levels_are_even_in_log_density_between_the_bounds():
    assert sparsity_levels(3, 0.5, 0.98) == [0.5, 0.9, 0.98]
    assert sparsity_levels(1, 0.5, 0.98) == [0.98]
    assert sparsity_levels(0, 0.5, 0.98) == []


def test_a_budget_pays_for_one_dense_training_then_fine_tuning_only():
    assert models_in_budget(20, first_cost=5, next_cost=2) == 8
    assert models_in_budget(4, first_cost=5, next_cost=2) == 0
    assert share(7, 3) == [3, 2, 2]


def test_the_reference_is_the_largest_architecture_unless_parameters_are_given():
    candidate, trial = reference_candidate(CNNSpace())
    assert candidate.arch == {"channels": [32, 32, 32], "kernel_size": 5, "hidden": 64}
    assert all(ratio == 0 for ratio in candidate.sparsity.values())
    candidate, trial = reference_candidate(CNNSpace(), {"arch.blocks": 1, "arch.hidden": 0})
    assert candidate.arch == {"channels": [32], "kernel_size": 5, "hidden": 0}
    assert trial.architecture() == {
        "arch.blocks": 1, "arch.block1.channels": 32, "arch.kernel_size": 5, "arch.hidden": 0
    }  # fmt: skip


@pytest.mark.parametrize(
    "given, message",
    [
        ({"arch.width": 3}, "no parameter arch.width"),
        ({"arch.blocks": 9}, "arch.blocks=9"),
        ({"arch.hidden": 7}, "arch.hidden=7 is outside"),  # not one of the choices
    ],
)
def test_bad_reference_parameters_are_refused(given, message):
    with pytest.raises(UsageError, match=message):
        reference_candidate(CNNSpace(), given)


@pytest.fixture
def baseline(compose_config, tmp_path):
    """run_baseline on the smoke config (1 + 1 epochs), in a temporary SQLite file."""

    def _baseline(*overrides: str, name: str = "test") -> optuna.Study:
        storage = f"sqlite:///{tmp_path / 'study.db'}"
        cfg = compose_config(
            "+space=cnn", "+debug=smoke", f"study.name={name}", f"study.storage={storage}",
            "study.n_trials=100", *overrides,
        )  # fmt: skip
        return run_baseline(cfg, launch_dir=tmp_path, run_dir=tmp_path / "run")

    return _baseline


@pytest.mark.slow
def test_a_sweep_prunes_one_architecture_trained_once_within_the_epoch_budget(baseline):
    study = baseline("method=global", "study.max_epochs=6")
    assert study.study_name == "test-global"
    assert study.metric_names == ["accuracy", "nonzero_params", "flops"]
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert [t.user_attrs["train_epochs"] for t in trials] == [2, 1, 1, 1, 1]
    assert [t.user_attrs["dense_cached"] for t in trials] == [False] + [True] * 4
    assert {t.user_attrs["arch"] for t in trials} == {"conv 32-32-32 k5 > fc 64 > head"}
    assert [t.params["sparsity.overall"] for t in trials] == sparsity_levels(5, 0.5, 0.99)
    nonzero = [t.values[1] for t in trials]
    assert nonzero == sorted(nonzero, reverse=True)
    dense = study.user_attrs["space_config"]["sparsity"]
    assert dense["allocation"] == "global"
    assert len(baseline("method=global", "study.max_epochs=6").trials) == 5  # resumed: done


@pytest.mark.slow
def test_two_stage_searches_dense_then_prunes_the_dense_front_in_the_same_budget(baseline):
    study = baseline("method=two_stage", "study.max_epochs=12")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    dense = [t for t in trials if t.params["sparsity.overall"] == 0]
    pruned = [t for t in trials if t.params["sparsity.overall"] > 0]
    assert len(dense) == 3 and pruned  # half of 12 epochs buys 3 dense trials of 2
    assert trials[: len(dense)] == dense  # the dense search comes first
    assert sum(t.user_attrs["train_epochs"] for t in trials) <= 12
    assert all(t.user_attrs["dense_cached"] for t in pruned)
    front = {t.user_attrs["arch"] for t in dense_front(dense, study)}
    assert {t.user_attrs["arch"] for t in pruned} == front  # every front member, nothing else


def interrupted_at_run(number: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the `number`-th trial the pipeline runs (from 1) end as Ctrl-C does."""
    run, calls = TrialPipeline.run, []

    def run_or_interrupt(self, *args, **kwargs):
        calls.append(None)
        if len(calls) == number:
            raise KeyboardInterrupt
        return run(self, *args, **kwargs)

    monkeypatch.setattr(TrialPipeline, "run", run_or_interrupt)


def outcomes(study: optuna.Study) -> dict[tuple[str, float], tuple[float, ...]]:
    """What each finished trial of `study` measured, by architecture and sparsity."""
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    return {(t.user_attrs["arch"], t.params["sparsity.overall"]): tuple(t.values) for t in trials}


@pytest.mark.slow
def test_two_stage_interrupted_while_pruning_resumes_to_what_an_uninterrupted_run_gives(
    baseline, monkeypatch
):
    whole = baseline("method=two_stage", "study.max_epochs=14", name="whole")
    with monkeypatch.context() as patched:
        interrupted_at_run(6, patched)  # 3 dense trials, then the third pruned one
        with pytest.raises(SearchInterrupted):
            baseline("method=two_stage", "study.max_epochs=14", name="cut")
    resumed = baseline("method=two_stage", "study.max_epochs=14", name="cut")
    assert not resumed.get_trials(states=(TrialState.WAITING, TrialState.RUNNING))
    assert outcomes(resumed) == outcomes(whole)
    spent = [
        t.user_attrs["train_epochs"] for t in resumed.get_trials(states=(TrialState.COMPLETE,))
    ]
    assert spent == [2, 2, 2] + [1] * 8  # the dense weights were not trained again


@pytest.mark.slow
def test_an_unknown_method_is_one_line_and_exit_2(tmp_path):
    result = forked_nas("baseline", "+space=cnn", "method=biggest", cwd=tmp_path)
    assert_one_line_error(result, "unknown baseline method='biggest'")
    assert not (tmp_path / "outputs" / "nas.db").exists()


def test_reference_parameters_can_be_given_on_the_command_line(compose_config):
    cfg = compose_config("+space=cnn", "baseline.arch={arch.blocks:2,arch.hidden:0}")
    candidate, _ = reference_candidate(CNNSpace(), cfg.baseline.arch)
    assert candidate.arch == {"channels": [32, 32], "kernel_size": 5, "hidden": 0}
