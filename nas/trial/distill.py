"""Knowledge distillation while fine-tuning: the pruned network learns the labels and
its dense parent's softened outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from nas.checks import above, check_fields, checked, from_node, setting, within

# (inputs, the student's logits, labels) -> loss
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(inputs: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor):
    """The plain training loss: cross-entropy with the labels (`inputs` unused)."""
    return F.cross_entropy(logits, labels)


@dataclass(frozen=True)
class Distillation:
    """Hinton et al.'s loss: (1 - `weight`) x cross-entropy with the labels plus `weight` x
    T² x KL(teacher || student), both softened by temperature T (`temperature`); the T²
    keeps the soft term's gradients on the scale of the hard one's. The config group
    `finetune` but its switch `distill` (conf/config.yaml holds the defaults), every value
    checked."""

    temperature: float = setting(above(0))
    weight: float = setting(within(0, 1))

    def __post_init__(self) -> None:
        check_fields(self, "finetune")

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


def distillation_of(finetune: Mapping) -> Distillation | None:
    """The `finetune` config as a Distillation, or None when `distill` is off."""
    distill = checked("finetune.distill", finetune.get("distill"), bool)
    return from_node(Distillation, finetune, "finetune", besides=("distill",)) if distill else None
