"""Mid-trial checkpoints kept in an Optuna artifact store, attached to the trial, so that
a retried trial (same parameters, new number) resumes from the last epoch its
predecessor saved."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path

import optuna
import torch
from optuna.artifacts import download_artifact, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

log = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"checkpoint-epoch(\d+)\.pt")


def retry_history(trial: optuna.Trial) -> list[int]:
    """Numbers of the trials `trial` retries, the original first; empty for a new trial."""
    frozen = trial.study.get_trials(deepcopy=False)[trial.number]
    return list(frozen.system_attrs.get("retry_history", []))


class ArtifactCheckpoints:
    """Checkpoints of one trial in an Optuna artifact store.

    `save` uploads `checkpoint-epochNNN.pt` as an artifact of `trial`. `latest` looks at
    the trials this one retries (Optuna's `retry_history` system attr), newest first, and
    loads the highest-epoch checkpoint it finds there with `weights_only=True`.
    """

    def __init__(self, store: optuna.artifacts.FileSystemArtifactStore, trial: optuna.Trial):
        self.store = store
        self.trial = trial

    def save(self, state: dict) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"checkpoint-epoch{state['epoch']:03d}.pt"
            torch.save(state, path)
            upload_artifact(
                artifact_store=self.store, file_path=str(path), study_or_trial=self.trial
            )

    def latest(self) -> dict | None:
        history = retry_history(self.trial)
        if not history:
            return None
        by_number = {t.number: t for t in self.trial.study.get_trials(deepcopy=False)}
        for number in reversed(history):
            state = self._newest_of(by_number[number])
            if state is not None:
                log.info(
                    "trial %d resumes trial %d from its epoch %d checkpoint",
                    self.trial.number,
                    number,
                    state["epoch"],
                )
                return state
        return None

    def _newest_of(self, trial: optuna.trial.FrozenTrial) -> dict | None:
        """The highest-epoch checkpoint of `trial` still in the store, or None."""
        storage = self.trial.storage
        saved = [
            (int(match.group(1)), meta)
            for meta in get_all_artifact_meta(trial, storage=storage)
            if (match := CHECKPOINT_NAME.fullmatch(meta.filename))
        ]
        for _, meta in sorted(saved, key=lambda pair: pair[0], reverse=True):
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / meta.filename
                try:
                    download_artifact(
                        artifact_store=self.store, file_path=str(path), artifact_id=meta.artifact_id
                    )
                except ArtifactNotFound:
                    log.warning(
                        "checkpoint %s of trial %d is missing from the artifact store",
                        meta.filename,
                        trial.number,
                    )
                    continue
                return torch.load(path, map_location="cpu", weights_only=True)
        return None
