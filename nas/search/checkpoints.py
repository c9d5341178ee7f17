"""Mid-trial checkpoints kept in an Optuna artifact store, attached to the trial, so that
a retried trial (same parameters, new number) resumes from the last epoch its
predecessor saved; and reading a checkpoint back from the store (`load_checkpoint`), from
which a checkpoint that cannot be read is deleted."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path

import optuna
import torch
from optuna.artifacts import ArtifactMeta, download_artifact, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from nas.errors import failure_reason

log = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"checkpoint-epoch(\d+)\.pt")


class UnreadableCheckpoint(Exception):
    """A checkpoint torch cannot load (cut short, overwritten): `str()` says why."""


def load_checkpoint(
    store: optuna.artifacts.FileSystemArtifactStore, meta: ArtifactMeta, device: str | torch.device
) -> dict:
    """The checkpoint artifact `meta` of `store`, loaded onto `device` with
    `weights_only=True`. ArtifactNotFound when the store lacks the file; a file torch
    cannot load is deleted from the store, so that no later run tries it again, and
    raises UnreadableCheckpoint."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / meta.filename
        download_artifact(artifact_store=store, file_path=str(path), artifact_id=meta.artifact_id)
        try:
            return torch.load(path, map_location=device, weights_only=True)
        except Exception as error:  # torch raises EOFError, OSError, RuntimeError, ...
            store.remove(meta.artifact_id)
            raise UnreadableCheckpoint(failure_reason(error)) from error


def retry_history(trial: optuna.Trial) -> list[int]:
    """Numbers of the trials `trial` retries, the original first; empty for a new trial."""
    frozen = trial.study.get_trials(deepcopy=False)[trial.number]
    return list(frozen.system_attrs.get("retry_history", []))


class ArtifactCheckpoints:
    """Checkpoints of one trial in an Optuna artifact store.

    `save` uploads `checkpoint-epochNNN.pt` as an artifact of `trial`. `latest` looks at
    the trials this one retries (Optuna's `retry_history` system attr), newest first, and
    loads the highest-epoch checkpoint it can read there with `weights_only=True`; one it
    cannot read is reported in one line and deleted (see `load_checkpoint`).
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
        by_number = {t.number: t for t in self.trial.study.get_trials(deepcopy=False)}
        saved = [  # the newest trial first, each from its highest epoch down
            (number, meta)
            for number in reversed(history)
            for meta in self._saved(by_number[number])
        ]
        for index, (number, meta) in enumerate(saved):
            try:
                state = load_checkpoint(self.store, meta, "cpu")
            except ArtifactNotFound:
                log.warning(
                    "checkpoint %s of trial %d is missing from the artifact store",
                    meta.filename,
                    number,
                )
                continue
            except UnreadableCheckpoint as error:
                log.warning(
                    "trial %d cannot read %s of trial %d (%s): deleted it; %s",
                    self.trial.number, meta.filename, number, error,
                    "trying the one before it" if index + 1 < len(saved)
                    else "starting it again from scratch",
                )  # fmt: skip
                continue
            log.info(
                "trial %d resumes trial %d from its epoch %d checkpoint",
                self.trial.number,
                number,
                state["epoch"],
            )
            return state
        return None

    def _saved(self, trial: optuna.trial.FrozenTrial) -> list[ArtifactMeta]:
        """The checkpoints `trial` recorded, from the highest epoch down."""
        saved = [
            (int(match.group(1)), meta)
            for meta in get_all_artifact_meta(trial, storage=self.trial.storage)
            if (match := CHECKPOINT_NAME.fullmatch(meta.filename))
        ]
        return [meta for _, meta in sorted(saved, key=lambda pair: pair[0], reverse=True)]
