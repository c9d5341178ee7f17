"""A trial that fails (NaN loss, CUDA out of memory, a bug in the space) fails alone."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.errors import SearchStopped
from nas.search.callbacks import FailureStreak
from nas.studies.joint_search import run_search
from tests.conftest import run_nas

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def faulty_search(compose_config, tmp_path):
    """run_search on the smoke config with tests.faulty_space.FaultySpace and `faults`."""

    def _search(faults: str, *overrides: str) -> optuna.Study:
        cfg = compose_config(
            "+space=cnn",
            "+debug=smoke",
            "study.name=faulty",
            f"study.storage=sqlite:///{tmp_path / 'study.db'}",
            "space._target_=tests.faulty_space.FaultySpace",
            f"+space.faults={faults}",
            "study.warm_start=false",  # faults are keyed by the numbers of sampled trials
            *overrides,
        )
        run_search(cfg, launch_dir=tmp_path, run_dir=tmp_path / "run")
        return optuna.load_study(study_name="faulty", storage=f"sqlite:///{tmp_path / 'study.db'}")

    return _search


@pytest.mark.slow
def test_failed_trials_record_why_and_the_search_goes_on(faulty_search, caplog):
    with caplog.at_level(logging.WARNING, logger="nas"):
        study = faulty_search("[oom,nan_loss,error]", "study.n_trials=2")
    states = [trial.state for trial in study.trials]
    assert states == [TrialState.FAIL] * 3 + [TrialState.COMPLETE] * 2
    reasons = [trial.user_attrs["fail_reason"] for trial in study.trials[:3]]
    assert reasons == [
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB",
        "FloatingPointError: training loss became nan",
        "KeyError: 'block9'",
    ]
    for number, reason in enumerate(reasons):
        assert f"trial {number} failed: {reason}" in caplog.text


@pytest.mark.slow
def test_a_streak_of_failures_stops_the_search_naming_the_common_reason(faulty_search):
    with pytest.raises(SearchStopped) as stopped:
        faulty_search(
            "[nan_loss,error,error,error,error,error]", "study.max_consecutive_failures=4"
        )
    assert str(stopped.value) == (
        "stopped after 4 failed trials in a row (study.max_consecutive_failures); "
        "3 of them failed with KeyError: 'block9'"
    )


@pytest.mark.slow
def test_a_completed_trial_resets_the_failure_count(faulty_search):
    study = faulty_search("[error,error,none,error,error]", "study.max_consecutive_failures=3")
    assert [trial.state.name for trial in study.trials] == [
        "FAIL", "FAIL", "COMPLETE", "FAIL", "FAIL", "COMPLETE",
    ]  # fmt: skip


@pytest.mark.slow
def test_the_command_exits_1_with_one_line_when_every_trial_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = run_nas(
        "search", "+space=cnn", "+debug=smoke", "space._target_=tests.faulty_space.FaultySpace",
        "+space.faults=[nan_loss,nan_loss]", "study.max_consecutive_failures=2",
        "study.warm_start=false", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]  # after the progress bar
    assert last_line.startswith("nas: error: stopped after 2 failed trials in a row")
    assert "study 'cnn-smoke' has no finished trial yet: no front to show" in result.stdout


def test_the_stop_message_groups_reasons_by_error_type():
    streak = FailureStreak(limit=10)
    study = optuna.create_study()
    for reason in [
        "OutOfMemoryError: 73 GiB free",
        "KeyError: 'x'",
        "OutOfMemoryError: 56 GiB free",
    ]:
        streak(
            study, optuna.create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": reason})
        )
    assert streak.message().endswith("2 of them failed with OutOfMemoryError: 56 GiB free")
    assert not streak.tripped
