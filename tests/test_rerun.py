"""One rerun after `kill -9` finishes the study: it waits for the dead process's trial to go
stale, retries it, and ends with study.n_trials finished trials."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import StorageInternalError
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from nas.search.callbacks import TrialBudget
from nas.search.storage import open_storage
from nas.search.study import wait_for_running
from tests.conftest import nas_command

# Trials of 10 dense epochs on 60 images; a trial is dead 2 s after its last heartbeat.
SEARCH = (
    "search",
    "+space=cnn",
    "+debug=smoke",
    "study.n_trials=2",
    "train.epochs=10",
    "data.n_samples=120",
    "study.heartbeat_interval=1",
    "study.grace_period=2",
)
DEADLINE = 240  # seconds any awaited event may take
DIRECTIONS = ["maximize", "minimize", "minimize"]


class OtherWorker:
    """Stands in for the progress bar: each time the search waits, the other worker's
    running trial ends with `state`."""

    def __init__(self, state: TrialState) -> None:
        self.state = state
        self.waits = 0

    def wait(self, study: optuna.Study, running: int) -> None:
        self.waits += 1
        (trial,) = study.get_trials(states=(TrialState.RUNNING,))
        values = [0.5, 1, 1] if self.state == TrialState.COMPLETE else None
        study.tell(trial.number, values, state=self.state)


def short_study(finished: int, running: int) -> optuna.Study:
    study = optuna.create_study(directions=DIRECTIONS)
    for _ in range(finished):
        study.tell(study.ask(), [0.5, 1, 1])
    for _ in range(running):
        study.ask()
    return study


def test_a_worker_waits_only_while_the_study_is_short_and_another_trial_runs():
    budget = TrialBudget(3)
    never = OtherWorker(TrialState.COMPLETE)
    for study in (short_study(finished=2, running=0), short_study(finished=3, running=1)):
        assert not wait_for_running(study, budget, lambda: True, never, interval=0)
    assert never.waits == 0, "waited with no trial running, or with the study full"


def test_a_worker_resumes_once_a_running_trial_fails_and_leaves_room():
    study = short_study(finished=2, running=1)
    budget = TrialBudget(3)
    other = OtherWorker(TrialState.FAIL)
    assert wait_for_running(study, budget, lambda: not budget.exhausted(study), other, 0)
    assert other.waits == 1


def test_a_worker_returns_once_the_running_trial_it_waited_for_fills_the_study():
    study = short_study(finished=2, running=1)
    budget = TrialBudget(3)
    other = OtherWorker(TrialState.COMPLETE)
    assert not wait_for_running(study, budget, lambda: not budget.exhausted(study), other, 0)
    assert other.waits == 1


def trials(tmp_path: Path) -> list[FrozenTrial]:
    """The trials of the study so far; none while it is being created."""
    try:
        study = optuna.load_study(
            study_name="cnn-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
        )
        return study.get_trials(deepcopy=False)
    except (KeyError, StorageInternalError, SQLAlchemyError):  # tables or study not there yet
        return []


def start(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        nas_command(*SEARCH), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_for(
    tmp_path: Path, process: subprocess.Popen, event: Callable[[list[FrozenTrial]], bool]
) -> None:
    """Return once the study's trials show `event`, `process` still running."""
    deadline = time.monotonic() + DEADLINE
    while not ((tmp_path / "outputs" / "smoke.db").exists() and event(trials(tmp_path))):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no such event; the search said {process.communicate()}")
        time.sleep(0.2)


def states(tmp_path: Path) -> list[TrialState]:
    return [trial.state for trial in trials(tmp_path)]


@pytest.mark.slow
def test_one_rerun_right_after_kill_9_finishes_the_study(tmp_path):
    first = start(tmp_path)
    wait_for(tmp_path, first, lambda trials: any(t.state == TrialState.RUNNING for t in trials))
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert states(tmp_path) == [TrialState.RUNNING]  # trial 0, which nobody could mark

    again = start(tmp_path)
    # Until the rerun has finished a trial of its own, trial 0 beats on as if its process
    # were alive, so that the rerun finds it running, however fast it starts.
    storage = open_storage(f"sqlite:///{tmp_path}/outputs/smoke.db", 1, 2, print)
    dead_id = trials(tmp_path)[0]._trial_id

    def beat_until_one_finished(trials: list[FrozenTrial]) -> bool:
        storage.record_heartbeat(dead_id)
        return any(t.state == TrialState.COMPLETE for t in trials)

    wait_for(tmp_path, again, beat_until_one_finished)
    stdout, stderr = again.communicate(timeout=DEADLINE)
    assert again.returncode == 0, stderr.decode()
    assert b"waiting for 1 running trial" in stdout
    assert states(tmp_path).count(TrialState.COMPLETE) == 2
    assert TrialState.RUNNING not in states(tmp_path)
    retry = next(t for t in trials(tmp_path) if "retry_of" in t.user_attrs)
    assert retry.user_attrs["retry_of"] == 0 and retry.state == TrialState.COMPLETE
