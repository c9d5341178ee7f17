"""Checkpoints in the artifact store are found again by the trial that retries."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta
from optuna.trial import TrialState

from nas.search.checkpoints import ArtifactCheckpoints
from nas.search.retry import RetryTrial
from tests.conftest import DAMAGES, damage


def first_trial_with_checkpoints(tmp_path, epochs):
    """A study whose trial 0 saved checkpoints after `epochs`, failed, and was queued again."""
    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study()
    trial = study.ask()
    trial.suggest_int("width", 1, 8)
    for epoch in epochs:
        ArtifactCheckpoints(store, trial).save({"epoch": epoch, "weight": torch.full((2,), epoch)})
    study.tell(trial, state=TrialState.FAIL)
    RetryTrial(max_retry=3)(study, study.trials[0])
    return store, study


def test_a_retry_resumes_from_the_newest_checkpoint_of_the_trial_it_repeats(tmp_path, caplog):
    store, study = first_trial_with_checkpoints(tmp_path, epochs=[1, 2, 3])
    retry = study.ask()
    assert retry.number == 1 and retry.params == study.trials[0].params
    with caplog.at_level(logging.INFO, logger="nas"):
        state = ArtifactCheckpoints(store, retry).latest()
    assert state["epoch"] == 3 and torch.equal(state["weight"], torch.full((2,), 3))
    assert "trial 1 resumes trial 0 from its epoch 3 checkpoint" in caplog.text
    assert ArtifactCheckpoints(store, study.ask()).latest() is None  # a new trial


def test_a_checkpoint_missing_from_the_store_is_skipped_with_a_warning(tmp_path, caplog):
    store, study = first_trial_with_checkpoints(tmp_path, epochs=[1, 2])
    metas = get_all_artifact_meta(study.trials[0], storage=study._storage)
    (epoch2,) = [meta for meta in metas if meta.filename == "checkpoint-epoch002.pt"]
    (tmp_path / epoch2.artifact_id).unlink()
    with caplog.at_level(logging.WARNING, logger="nas"):
        state = ArtifactCheckpoints(store, study.ask()).latest()
    assert state["epoch"] == 1
    assert "checkpoint-epoch002.pt of trial 0 is missing" in caplog.text


def checkpoint_file(tmp_path, study, filename: str) -> Path:
    """Where the store of `first_trial_with_checkpoints` keeps trial 0's `filename`."""
    metas = get_all_artifact_meta(study.trials[0], storage=study._storage)
    (meta,) = [meta for meta in metas if meta.filename == filename]
    return tmp_path / meta.artifact_id


@pytest.mark.parametrize("how", DAMAGES)
def test_an_unreadable_checkpoint_is_reported_in_one_line_deleted_and_the_trial_starts_over(
    tmp_path, caplog, how
):
    store, study = first_trial_with_checkpoints(tmp_path, epochs=[1])
    broken = checkpoint_file(tmp_path, study, "checkpoint-epoch001.pt")
    damage(broken, how)
    with caplog.at_level(logging.INFO, logger="nas"):
        assert ArtifactCheckpoints(store, study.ask()).latest() is None
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("trial 1 cannot read checkpoint-epoch001.pt of trial 0 (")
    assert message.endswith("): deleted it; starting it again from scratch")
    assert not broken.exists()


def test_an_unreadable_newest_checkpoint_gives_way_to_the_one_before_it(tmp_path, caplog):
    store, study = first_trial_with_checkpoints(tmp_path, epochs=[1, 2])
    damage(checkpoint_file(tmp_path, study, "checkpoint-epoch002.pt"), "cut short")
    with caplog.at_level(logging.INFO, logger="nas"):
        state = ArtifactCheckpoints(store, study.ask()).latest()
    assert state["epoch"] == 1
    unreadable, resumed = (record.getMessage() for record in caplog.records)
    assert unreadable.startswith("trial 1 cannot read checkpoint-epoch002.pt of trial 0 (")
    assert unreadable.endswith("): deleted it; trying the one before it")
    assert resumed == "trial 1 resumes trial 0 from its epoch 1 checkpoint"


def test_a_trial_is_retried_at_most_max_retry_times(tmp_path):
    study = optuna.create_study()
    retry = RetryTrial(max_retry=1)
    study.tell(study.ask(), state=TrialState.FAIL)
    retry(study, study.trials[0])
    again = study.ask()
    study.tell(again, state=TrialState.FAIL)
    retry(study, study.trials[again.number])
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    assert study.trials[1].system_attrs["retry_history"] == [0]
