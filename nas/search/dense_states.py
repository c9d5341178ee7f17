"""Dense states kept as artifacts of a study (`dense-<name>.pt`), so that a resumed study
fine-tunes the architectures an earlier process trained instead of training them again:
the `DenseStore` of a baseline's `DenseCache`."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import optuna
import torch
from optuna.artifacts import ArtifactMeta, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from nas.search.checkpoints import UnreadableCheckpoint, load_checkpoint
from nas.trial.dense_cache import DenseState

log = logging.getLogger(__name__)


class ArtifactDenseStates:
    """Dense states in `store`, attached to `study`; loaded onto `device` (the batch-order
    generator's state stays on the CPU)."""

    def __init__(
        self,
        store: optuna.artifacts.FileSystemArtifactStore,
        study: optuna.Study,
        device: torch.device,
    ) -> None:
        self.store = store
        self.study = study
        self.device = device

    @staticmethod
    def filename(name: str) -> str:
        """The artifact's file name for the state called `name`."""
        return f"dense-{name}.pt"

    def _meta(self, name: str) -> ArtifactMeta | None:
        """The newest artifact kept under `name`, or None."""
        metas = [
            meta
            for meta in get_all_artifact_meta(self.study)
            if meta.filename == self.filename(name)
        ]
        return metas[-1] if metas else None

    def holds(self, name: str) -> bool:
        return self._meta(name) is not None

    def load(self, name: str) -> DenseState | None:
        meta = self._meta(name)
        if meta is None:
            return None
        try:
            saved = load_checkpoint(self.store, meta, "cpu")
        except (ArtifactNotFound, UnreadableCheckpoint) as error:
            reason = (
                "missing from the artifact store" if isinstance(error, ArtifactNotFound) else error
            )
            log.warning("cannot read %s (%s): training it again", meta.filename, reason)
            return None
        return DenseState(
            weights={key: value.to(self.device) for key, value in saved["weights"].items()},
            generator=saved["generator"],
            accuracy=saved["accuracy"],
            val_logits=saved["val_logits"].to(self.device),
        )

    def save(self, name: str, state: DenseState) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / self.filename(name)
            torch.save(vars(state), path)
            upload_artifact(
                artifact_store=self.store, file_path=str(path), study_or_trial=self.study
            )
