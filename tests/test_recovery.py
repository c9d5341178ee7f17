"""A search killed or interrupted mid-trial loses nothing: real processes, real signals."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState

from tests.conftest import damage, forked_nas, nas_command

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Argument ``heartbeat_interval`` is an experimental"),
]

HEARTBEAT_INTERVAL, GRACE_PERIOD = 1, 2  # s: a trial is dead 2 s after its last heartbeat
DEADLINE = 300  # s to wait for any one event, however loaded the machine is

# One long trial (100 dense epochs on 60 images) that checkpoints every epoch.
LONG_TRIAL = (
    "search",
    "+space=cnn",
    "+debug=smoke",
    "study.n_trials=1",
    "train.epochs=100",
    "data.n_samples=120",
    "study.checkpoint_over_epochs=0",
    f"study.heartbeat_interval={HEARTBEAT_INTERVAL}",
    f"study.grace_period={GRACE_PERIOD}",
)


def load(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(
        study_name="cnn-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
    )


def wait_until(
    condition: Callable[[], bool], event: str, process: subprocess.Popen | None = None
) -> None:
    """Return once `condition()` holds, polling; fail naming `event` when `process` ends
    first or after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the search ended before {event}: {process.communicate()}")
        if time.monotonic() > deadline:
            if process is not None:
                process.kill()
            pytest.fail(f"no {event} within {DEADLINE} s")
        time.sleep(0.1)


class Trial0:
    """Trial 0 as the storage has it now, read without a cache."""

    def __init__(self, tmp_path: Path) -> None:
        self.storage = optuna.storages.RDBStorage(
            f"sqlite:///{tmp_path}/outputs/smoke.db",
            heartbeat_interval=HEARTBEAT_INTERVAL,
            grace_period=GRACE_PERIOD,
        )
        self.study_id = self.storage.get_study_id_from_name("cnn-smoke")
        self.trial = self.storage.get_all_trials(self.study_id, deepcopy=False)[0]

    def checkpoints(self) -> int:
        """How many checkpoints it has saved."""
        return len(get_all_artifact_meta(self.trial, storage=self.storage))

    def state(self) -> TrialState:
        return self.storage.get_trial(self.trial._trial_id).state

    def is_stale(self) -> bool:
        """Whether its heartbeat is older than the grace period: the check that
        `optuna.storages.fail_stale_trials` makes, without failing anything."""
        return self.trial._trial_id in self.storage._get_stale_trial_ids(self.study_id)


def start_and_wait_for_checkpoints(tmp_path: Path, count: int) -> tuple[subprocess.Popen, Trial0]:
    """Start the long trial; return once trial 0 has saved `count` checkpoints and is still
    running (checked in that order, so both hold when this returns)."""
    process = subprocess.Popen(
        nas_command(*LONG_TRIAL), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # The first checkpoint file: the storage is set up, the study and trial 0 exist.
    artifacts = tmp_path / "outputs" / "smoke-artifacts"
    wait_until(lambda: artifacts.is_dir() and any(artifacts.iterdir()), "checkpoint file", process)
    trial = Trial0(tmp_path)
    wait_until(
        lambda: trial.checkpoints() >= count and trial.state() == TrialState.RUNNING,
        f"{count} checkpoints of the running trial 0",
        process,
    )
    return process, trial


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
    process, trial = start_and_wait_for_checkpoints(tmp_path, count=3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=DEADLINE)
    assert load(tmp_path).trials[0].state == TrialState.RUNNING  # nobody could mark it
    wait_until(trial.is_stale, "stale heartbeat of trial 0")  # else the rerun would not retry it

    again = forked_nas(*LONG_TRIAL, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    study = load(tmp_path)
    retry = assert_resumed_retry_of_trial_0(study)
    epoch = retry.user_attrs["resumed_from_epoch"]
    assert f"trial 1 resumes trial 0 from its epoch {epoch} checkpoint" in again.stdout
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 1


def test_checkpoints_that_cannot_be_read_are_reported_deleted_and_the_retry_starts_over(tmp_path):
    process, trial = start_and_wait_for_checkpoints(tmp_path, count=3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=DEADLINE)
    metas = get_all_artifact_meta(trial.trial, storage=trial.storage)
    files = [tmp_path / "outputs" / "smoke-artifacts" / meta.artifact_id for meta in metas]
    for file in files:
        damage(file, "cut short")
    wait_until(trial.is_stale, "stale heartbeat of trial 0")

    again = forked_nas(*LONG_TRIAL, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    trials = load(tmp_path).trials  # trial 0, killed; trial 1, its retry, from scratch
    assert len(trials) == 2, [t.user_attrs.get("fail_reason") for t in trials]
    retry = trials[1]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["resumed_from_epoch"] == 0
    reports = [line for line in again.stdout.splitlines() if "cannot read" in line]
    assert len(reports) == len(files)  # one line each, the newest first
    assert f"trial 1 cannot read checkpoint-epoch{len(files):03d}.pt of trial 0 (" in reports[0]
    assert reports[-1].endswith("): deleted it; starting it again from scratch")
    assert "trial 1 failed" not in again.stdout
    assert not any(file.exists() for file in files)


def test_ctrl_c_marks_the_trial_failed_prints_the_front_and_exits_130(tmp_path):
    process, _ = start_and_wait_for_checkpoints(tmp_path, count=3)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=DEADLINE)
    if process.returncode != 130:  # the whole of stderr: an assertion message is cut short
        pytest.fail(f"exit {process.returncode}, stderr:\n{stderr.decode()}")
    assert b"study 'cnn-smoke' has no finished trial yet: no front to show" in stdout
    assert b"Traceback" not in stderr
    assert stderr.decode().strip().splitlines()[-1].startswith("nas: interrupted by SIGINT")
    first, queued = load(tmp_path).trials
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "interrupted"
    assert queued.state == TrialState.WAITING and queued.user_attrs["retry_of"] == 0

    again = forked_nas(*LONG_TRIAL, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_resumed_retry_of_trial_0(load(tmp_path))
