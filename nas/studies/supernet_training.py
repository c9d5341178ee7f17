"""`train-supernet`: train a weight-sharing study's supernet on every process `torchrun`
started (data-parallel, `nas.supernet.ranks`), or in this process alone, and keep it in
the study's artifact store, where every `search` worker of the study then finds it
trained and slices its candidates out of it instead of training it, or waiting, itself."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from nas.errors import UsageError
from nas.record.attrs import SUPERNET
from nas.search.study import Search
from nas.supernet.ranks import joined, leave


def run_supernet_training(cfg: DictConfig, launch_dir: Path) -> str | None:
    """Make sure the study `cfg` describes holds its trained supernet, training it here
    (with every rank torchrun started) unless it is trained already, waiting while a
    worker still alive trains it; returns, on rank 0, the line that says what the study
    now holds (None on the other ranks)."""
    if cfg.train.get("supernet") is None:
        raise UsageError(
            "train-supernet trains a weight-sharing study's supernet: add train=supernet"
        )
    ranks = joined()  # first: with CUDA, each rank's data goes to its own GPU
    try:
        search = Search.from_config(cfg, launch_dir)
        study = ranks.leader_first(lambda: search.open(search.opts.name))
        search.with_supernet(search.pipeline, study, search.artifact_store(), ranks)
    finally:
        leave(ranks)
    if not ranks.leader:
        return None
    record = SUPERNET.of(study)
    return (
        f"study {study.study_name!r} holds its trained supernet: {record['epochs_done']} "
        f"epochs, {record['train_epochs']:g} of the study's budget epochs (this run: "
        f"{ranks.world} process{'es' if ranks.world > 1 else ''}); its search workers "
        f"slice their candidates out of it"
    )
