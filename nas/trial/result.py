"""What one trial measured, and what its training cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from nas.trial.objectives import DEFAULT

OPTIONAL_ATTRS = ("latency_ms", "sparsity_rule")


def training_flops(samples: int, *phases: tuple[int, int]) -> int:
    """FLOPs of training on `samples` samples for each (epochs, forward FLOPs per sample)
    phase: forward and backward cost 3 forward passes (the backward pass twice the forward),
    counted as `flops` is (a multiply-add is 2 FLOPs)."""
    return sum(3 * samples * epochs * flops for epochs, flops in phases)


@dataclass(frozen=True)
class TrialResult:
    """Everything one candidate's run measured; `values()` are the study's objectives."""

    accuracy: float
    nonzero_params: int
    flops: int
    test_accuracy: float
    dense_accuracy: float
    macro_f1: float
    worst_class_accuracy: float
    agreement: float
    kl_divergence: float
    ece: float
    dense_params: int
    dense_flops: int
    sparsity_target: dict[str, float]
    sparsity_achieved: dict[str, float]
    train_epochs: float
    train_flops: int
    recalibration_epochs: float  # the part of train_epochs its BatchNorm recalibration cost
    resumed_from_epoch: int
    dense_cached: bool
    dense_sliced: bool
    finetune_skipped: bool
    removed_channels: list
    seconds: float
    arch: str
    latency_ms: float | None = None  # measured only when it is an objective
    sparsity_rule: dict[str, float] | None = None  # the rule's ratios without the shifts

    def values(self, objectives: Sequence[str] = DEFAULT) -> tuple[float, ...]:
        """The measures named by `objectives`, in that order."""
        return tuple(getattr(self, name) for name in objectives)

    def user_attrs(self, objectives: Sequence[str] = DEFAULT) -> dict:
        """Everything measured but the objectives, stored as trial user attributes;
        `latency_ms` and `sparsity_rule` only when there are some."""
        return {
            name: value
            for name, value in asdict(self).items()
            if name not in objectives and not (name in OPTIONAL_ATTRS and value is None)
        }
