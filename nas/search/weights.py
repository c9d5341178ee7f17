"""The pruned weights of every finished trial, kept in the study's artifact store as
`pruned-weights.pt` (a state_dict, zeros included) for the dashboard and `export`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import optuna
import torch
from optuna.artifacts import download_artifact, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from torch import nn

PRUNED_WEIGHTS = "pruned-weights.pt"


def save_pruned_weights(
    store: optuna.artifacts.FileSystemArtifactStore, trial: optuna.Trial, model: nn.Module
) -> None:
    """Attach `model`'s state_dict to `trial` as the artifact `pruned-weights.pt`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / PRUNED_WEIGHTS
        torch.save(model.state_dict(), path)
        upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)


def load_pruned_weights(
    store: optuna.artifacts.FileSystemArtifactStore,
    storage: optuna.storages.BaseStorage,
    trial: optuna.trial.FrozenTrial,
) -> dict[str, torch.Tensor]:
    """The state_dict `trial` saved; LookupError naming what is missing."""
    number = trial.number
    metas = [
        meta
        for meta in get_all_artifact_meta(trial, storage=storage)
        if meta.filename == PRUNED_WEIGHTS
    ]
    if not metas:
        raise LookupError(f"trial {number} has no {PRUNED_WEIGHTS} artifact")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / PRUNED_WEIGHTS
        try:
            download_artifact(
                artifact_store=store, file_path=str(path), artifact_id=metas[-1].artifact_id
            )
        except ArtifactNotFound:
            raise LookupError(
                f"the {PRUNED_WEIGHTS} of trial {number} is not in the artifact store "
                f"(study.artifacts)"
            ) from None
        return torch.load(path, map_location="cpu", weights_only=True)
