"""What a study's supernet resumed after a crash continues from: killed at an epoch
boundary and trained on by the next worker, it ends bit for bit as one trained through,
its weights, BatchNorm statistics and optimizer state alike."""

from __future__ import annotations

import inspect

import optuna
import pytest
import torch

import nas.search.supernet as shared
from tests.test_exact_distillation import first_images
from tests.test_supernet import trainer

EPOCHS, KILLED_AFTER = 3, 2
SETTINGS = {"epochs": EPOCHS, "subnets": 3, "largest_every": 2, "distill_warmup": 1}


class Killed(Exception):
    """The process training the supernet died."""


def assert_same_tensors(first, second, where: str = "") -> None:
    """`first` and `second` (nested dicts, lists and tensors) hold the same keys and
    bit-identical tensors."""
    if isinstance(first, torch.Tensor):
        assert isinstance(second, torch.Tensor) and first.dtype == second.dtype, where
        assert torch.equal(first, second), where
    elif isinstance(first, dict):
        assert first.keys() == second.keys(), where
        for key in first:
            assert_same_tensors(first[key], second[key], f"{where}/{key}")
    elif isinstance(first, list | tuple):
        assert len(first) == len(second), where
        for index, (a, b) in enumerate(zip(first, second, strict=True)):
            assert_same_tensors(a, b, f"{where}/{index}")
    else:
        assert first == second, where


def test_a_supernet_killed_after_an_epoch_and_resumed_ends_as_one_trained_through(
    tiny_splits, tmp_path, monkeypatch
):
    splits = first_images(tiny_splits, 96)  # 2 steps an epoch, the largest in the first
    through_study = optuna.create_study()
    through = trainer(through_study, splits, tmp_path / "through", **SETTINGS)
    through_supernet = through.ready()

    study = optuna.create_study()
    write = shared.SupernetTrainer._write

    def dying_write(self, **changes):  # the process dies once epoch 2 is saved and recorded
        write(self, **changes)
        if changes.get("epochs_done") == KILLED_AFTER:
            raise Killed

    killed = trainer(study, splits, tmp_path / "store", **SETTINGS)
    monkeypatch.setattr(killed, "_write", dying_write.__get__(killed))
    with pytest.raises(Killed):
        killed.ready()
    assert shared.record_of(study)["epochs_done"] == KILLED_AFTER
    study.set_user_attr(shared.HEARTBEAT, 0.0)  # its heartbeat has long gone stale

    resumed = trainer(study, splits, tmp_path / "store", **SETTINGS)
    epochs_trained = []
    sandwich = shared.sandwich_epoch

    def counted(*args):
        epochs_trained.append(inspect.signature(sandwich).bind(*args).arguments["epoch"])
        return sandwich(*args)

    monkeypatch.setattr(shared, "sandwich_epoch", counted)
    resumed_supernet = resumed.ready()
    assert epochs_trained == [KILLED_AFTER + 1]

    assert_same_tensors(resumed_supernet.state_dict(), through_supernet.state_dict())
    last = resumed._state(EPOCHS), through._state(EPOCHS)
    assert_same_tensors(last[0]["supernet"], last[1]["supernet"], "supernet")
    assert last[0]["optimizer"]["state"], "Adam's moments are saved"
    assert_same_tensors(last[0]["optimizer"], last[1]["optimizer"], "optimizer")
    record, through_record = shared.record_of(study), shared.record_of(through_study)
    for key in ("epochs_done", "train_epochs", "train_flops"):
        assert record[key] == through_record[key], key
