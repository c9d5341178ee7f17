"""A study's supernet is trained once: a search killed while it trains resumes after the
last finished epoch, and two workers started together train it once between them."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.exceptions import StorageInternalError
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from tests.conftest import forked_nas, nas_command

pytestmark = pytest.mark.slow

EPOCHS = 3


def command(tmp_path: Path, *extra: str) -> list[str]:
    """A 2-trial smoke search with a 3-epoch supernet in tmp_path's own storage."""
    return [
        "search", "+space=cnn", "+debug=smoke", "train=supernet", "study.name=shared",
        f"study.storage=sqlite:///{tmp_path}/nas.db", f"study.artifacts={tmp_path}/artifacts",
        f"train.supernet.epochs={EPOCHS}", "train.supernet.bn_images=64",
        "study.heartbeat_interval=1", "study.grace_period=5", *extra,
    ]  # fmt: skip


def load(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path}/nas.db")


def epochs_done(tmp_path: Path) -> int:
    """Supernet epochs the study records as finished (0 before the study exists)."""
    try:
        return load(tmp_path).user_attrs.get("supernet", {}).get("epochs_done", 0)
    except (KeyError, StorageInternalError, SQLAlchemyError):
        return 0


def checkpoints(tmp_path: Path) -> Counter:
    """How often each supernet checkpoint was saved."""
    study = load(tmp_path)
    return Counter(meta.filename for meta in get_all_artifact_meta(study))


def test_a_search_killed_while_the_supernet_trains_resumes_after_its_last_epoch(tmp_path):
    process = subprocess.Popen(
        nas_command(*command(tmp_path)), cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while epochs_done(tmp_path) < 1:
        assert process.poll() is None and time.monotonic() < deadline, "no supernet epoch"
        time.sleep(0.1)
    process.kill()
    process.wait()
    done_when_killed = epochs_done(tmp_path)
    assert done_when_killed < EPOCHS

    # the rerun waits until the killed worker's heartbeat is older than the grace period
    result = forked_nas(*command(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert epochs_done(tmp_path) == EPOCHS
    saved = checkpoints(tmp_path)
    assert saved == Counter(f"supernet-epoch{e:03d}.pt" for e in range(1, EPOCHS + 1))
    study = load(tmp_path)
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 2
    for trial in finished:  # sliced, or a sibling reusing the sliced weights: never trained
        attrs = trial.user_attrs
        assert attrs["dense_sliced"] or attrs["dense_cached"]
        assert (attrs["recalibration_epochs"] > 0) == attrs["dense_sliced"]
        assert attrs["train_epochs"] == pytest.approx(1 + attrs["recalibration_epochs"])


def test_two_workers_started_together_train_the_supernet_once(tmp_path):
    workers = [
        subprocess.Popen(
            nas_command(*command(tmp_path, "study.n_trials=4", "train.supernet.largest_every=1")),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr
    saved = checkpoints(tmp_path)
    assert saved == Counter(f"supernet-epoch{e:03d}.pt" for e in range(1, EPOCHS + 1))
    study = load(tmp_path)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    assert study.user_attrs["supernet"]["train_epochs"] == EPOCHS * 4  # 4 networks a step
