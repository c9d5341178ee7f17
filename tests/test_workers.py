"""Several workers share one study: the trial budget holds across processes."""

from __future__ import annotations

import multiprocessing
import subprocess

import optuna
import pytest
from optuna.trial import TrialState

from nas.search.callbacks import TrialBudget
from nas.search.storage import open_storage
from tests.conftest import nas_command

WAITING_TRIALS = 150


def _claim_waiting_trials(url: str) -> list[int]:
    """Claim waiting trials of study "queue" at `url` (as `study.optimize` does) until
    none is left; the ids of those this process got."""
    study = optuna.load_study(study_name="queue", storage=open_storage(url, 10, 30, print))
    claimed = []
    while (trial_id := study._pop_waiting_trial_id()) is not None:
        claimed.append(trial_id)
    return claimed


def test_the_budget_counts_finished_trials_and_running_trials_numbered_before():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.tell(study.ask(), [0.5, 1, 1])
    first, second, third = study.ask(), study.ask(), study.ask()
    budget = TrialBudget(3)
    assert budget.admits(first) and budget.admits(second)
    assert not budget.admits(third)  # 1 finished + 2 running before it fill 3
    assert budget.remaining(study) == -1
    study.tell(first, state=TrialState.FAIL)
    assert budget.admits(third) and budget.remaining(study) == 0


@pytest.mark.slow
def test_workers_sharing_a_sqlite_file_never_claim_the_same_waiting_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="queue", storage=open_storage(url, 10, 30, print))
    for x in range(WAITING_TRIALS):
        study.enqueue_trial({"x": x}, skip_if_exists=False)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        claims = pool.map(_claim_waiting_trials, [url] * 4)
    claimed = [trial_id for claim in claims for trial_id in claim]
    assert len(claimed) == WAITING_TRIALS, "a waiting trial was claimed twice (or lost)"
    assert len(set(claimed)) == WAITING_TRIALS


@pytest.mark.slow
def test_three_workers_on_one_sqlite_study_finish_exactly_n_trials(tmp_path):
    command = nas_command("search", "+space=cnn", "+debug=smoke", "study.n_trials=5")
    workers = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    results = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, stderr) in zip(workers, results, strict=True):
        assert worker.returncode == 0, stderr.decode()

    study = optuna.load_study(
        study_name="cnn-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
    )
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 5
    numbers = [trial.number for trial in study.trials]
    assert numbers == list(range(len(numbers)))
    run_folders = list((tmp_path / "outputs" / "runs").iterdir())
    assert len(run_folders) == 3, "workers started together must not share a run folder"
