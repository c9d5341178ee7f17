"""A CNN space whose trials fail on purpose: trial i raises `faults[i]`, if any."""

from __future__ import annotations

import optuna
import torch
from torch import nn

from nas.space import Candidate
from search_spaces.cnn import CNNSpace


class NaNOutput(nn.Module):
    """Turns every logit into NaN, so that the training loss is NaN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


class FaultySpace(CNNSpace):
    """`faults` lists, per trial number, `none`, `nan_loss`, `oom` (a CUDA
    out-of-memory error) or `error` (an exception in the space's own code)."""

    def __init__(self, faults: list[str], **cnn) -> None:
        super().__init__(**cnn)
        self.faults = list(faults)

    def sample(self, trial: optuna.Trial) -> Candidate:
        candidate = super().sample(trial)
        fault = self.faults[trial.number] if trial.number < len(self.faults) else "none"
        return Candidate({**candidate.arch, "fault": fault}, candidate.sparsity)

    def build(self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        fault = candidate.arch["fault"]
        if fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        if fault == "error":
            raise KeyError("block9")
        model = super().build(candidate, in_shape, n_classes)
        if fault == "nan_loss":
            model.add_module("nan", NaNOutput())  # appended: the layer paths stay the same
        return model
