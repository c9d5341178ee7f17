"""A search killed or interrupted mid-trial loses nothing: real processes, real signals."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.exceptions import StorageInternalError
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from tests.conftest import nas_command, run_nas

pytestmark = pytest.mark.slow

# One long trial (100 dense epochs on 60 images) that checkpoints every epoch, and a
# storage that calls a trial dead 2 s after its last heartbeat.
LONG_TRIAL = (
    "search",
    "+space=cnn",
    "+debug=smoke",
    "study.n_trials=1",
    "train.epochs=100",
    "data.n_samples=120",
    "study.checkpoint_over_epochs=0",
    "study.heartbeat_interval=1",
    "study.grace_period=2",
)


def load(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(
        study_name="cnn-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
    )


def saved_checkpoints(tmp_path: Path) -> int:
    """How many checkpoints trial 0 has saved so far (0 while the study is being created)."""
    try:
        study = load(tmp_path)
        trials = study.get_trials(deepcopy=False)
        return len(get_all_artifact_meta(trials[0], storage=study._storage)) if trials else 0
    except (KeyError, StorageInternalError, SQLAlchemyError):  # tables or study not there yet
        return 0


def start_and_wait_for_checkpoints(tmp_path: Path, count: int) -> subprocess.Popen:
    """Start the long trial and return once trial 0 has saved `count` checkpoints."""
    process = subprocess.Popen(
        nas_command(*LONG_TRIAL), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if (tmp_path / "outputs" / "smoke.db").exists() and saved_checkpoints(tmp_path) >= count:
            return process
        time.sleep(0.1)
    process.kill()
    pytest.fail("trial 0 saved no checkpoints in 120 s")


def assert_resumed_retry_of_trial_0(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """Trial 0 failed; trial 1 re-ran its parameters from a checkpoint and completed."""
    first, retry = study.trials
    assert first.state == TrialState.FAIL
    assert retry.state == TrialState.COMPLETE
    assert retry.params == first.params
    assert retry.user_attrs["retry_of"] == 0
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.user_attrs["resumed_from_epoch"] >= 3
    return retry


def test_kill_9_mid_trial_then_the_same_command_resumes_the_trial_from_its_checkpoint(tmp_path):
    process = start_and_wait_for_checkpoints(tmp_path, count=3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert load(tmp_path).trials[0].state == TrialState.RUNNING  # nobody could mark it
    time.sleep(3)  # past study.grace_period: its heartbeat is now stale

    again = run_nas(*LONG_TRIAL, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    study = load(tmp_path)
    retry = assert_resumed_retry_of_trial_0(study)
    epoch = retry.user_attrs["resumed_from_epoch"]
    assert f"trial 1 resumes trial 0 from its epoch {epoch} checkpoint" in again.stdout
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 1


def test_ctrl_c_marks_the_trial_failed_prints_the_front_and_exits_130(tmp_path):
    process = start_and_wait_for_checkpoints(tmp_path, count=3)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"Pareto front of study 'cnn-smoke' (0 of 0 finished trials)" in stdout
    assert b"Traceback" not in stderr
    assert stderr.decode().strip().splitlines()[-1].startswith("nas: error: interrupted by SIGINT")
    first, queued = load(tmp_path).trials
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "interrupted"
    assert queued.state == TrialState.WAITING and queued.user_attrs["retry_of"] == 0

    again = run_nas(*LONG_TRIAL, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_resumed_retry_of_trial_0(load(tmp_path))
