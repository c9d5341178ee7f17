"""The state one candidate's run carries from phase to phase."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import nn

from nas.prune.methods import Removals
from nas.space import Candidate
from nas.trial.dense_cache import DenseState


@dataclass
class Progress:
    """What a trial's checkpoint records beside its training state (model, optimizer,
    generator, masks): where its dense weights came from, then, once it is pruned, what the
    fine-tuning needs. The keys of a checkpoint are these fields' names."""

    dense_sliced: bool = False
    removed_channels: Removals = field(default_factory=list)
    dense_accuracy: float | None = None
    dense_val_logits: torch.Tensor | None = None
    sparsity_target: dict[str, float] | None = None
    sparsity_rule: dict[str, float] | None = None
    teacher: dict[str, torch.Tensor] | None = None

    def as_checkpoint(self) -> dict:
        """The fields as a checkpoint's entries (tensors not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_checkpoint(cls, saved: dict, pruned: bool, device: torch.device) -> Progress:
        """The progress a checkpoint `saved` records; before pruning only where the dense
        weights came from counts."""
        if not pruned:
            return cls(dense_sliced=saved.get("dense_sliced", False))
        progress = cls(**{f.name: saved.get(f.name) for f in fields(cls)})
        progress.dense_val_logits = progress.dense_val_logits.to(device)
        return progress


@dataclass
class TrialRun:
    """One candidate's run: its network, the generator of its batch order, what its dense
    network counts, and how far the phases have gone."""

    candidate: Candidate
    seed: int
    model: nn.Module
    generator: torch.Generator
    example: torch.Tensor  # an input batch, for methods that trace the model
    dense_params: int
    dense_flops: int
    dense_counts: dict[str, int]
    progress: Progress = field(default_factory=Progress)
    epoch: int = 0  # training epochs done: dense ones, then fine-tuning ones
    resumed_from_epoch: int = 0
    cached: DenseState | None = None  # the dense state, when the cache had it
    saved_optimizer: dict | None = None  # a checkpoint's, for the phase it was saved in
    teacher: nn.Module | None = None  # the dense network, when fine-tuning distils from it
    finetuned: bool = True

    @property
    def dense_trained(self) -> bool:
        """Whether this run trains (or trained) its dense weights itself."""
        return self.cached is None and not self.progress.dense_sliced
