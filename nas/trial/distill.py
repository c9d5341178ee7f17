"""Knowledge distillation while fine-tuning: the pruned network learns the labels and
its dense parent's softened outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

# (inputs, the student's logits, labels) -> loss
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(inputs: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor):
    """The plain training loss: cross-entropy with the labels (`inputs` unused)."""
    return F.cross_entropy(logits, labels)


@dataclass(frozen=True)
class Distillation:
    """Hinton et al.'s loss: (1 - `weight`) x cross-entropy with the labels plus `weight` x
    T² x KL(teacher || student), both softened by temperature T (`temperature`); the T²
    keeps the soft term's gradients on the scale of the hard one's."""

    temperature: float = 4.0
    weight: float = 0.5

    def __post_init__(self) -> None:
        for name in ("temperature", "weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"finetune.{name} must be a number, got {value!r}")
        if not self.temperature > 0:
            raise ValueError(f"finetune.temperature must be positive, got {self.temperature!r}")
        if not 0 <= self.weight <= 1:
            raise ValueError(f"finetune.weight must be in [0, 1], got {self.weight!r}")

    def loss(
        self, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The combined loss of `student` logits against `teacher` logits and `labels`."""
        t = self.temperature
        soft = F.kl_div(
            F.log_softmax(student.float() / t, dim=1),
            F.log_softmax(teacher.float() / t, dim=1),
            log_target=True,
            reduction="batchmean",
        )
        hard = F.cross_entropy(student, labels)
        return (1 - self.weight) * hard + self.weight * t * t * soft

    def against(self, teacher: nn.Module) -> LossFn:
        """The training loss of a student taught by `teacher` (kept frozen, in eval mode)."""
        teacher.eval().requires_grad_(False)

        def loss(inputs: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor):
            with torch.no_grad():
                target = teacher(inputs)
            return self.loss(logits, target, labels)

        return loss


def distillation_of(finetune: dict) -> Distillation | None:
    """The `finetune` config as a Distillation, or None when `distill` is off."""
    options = dict(finetune)
    distill = options.pop("distill", False)
    if not isinstance(distill, bool):
        raise ValueError(f"finetune.distill must be true or false, got {distill!r}")
    return Distillation(**options) if distill else None
