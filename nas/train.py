"""Training, fine-tuning and evaluation loops over in-memory tensors; device and seeds."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import nn


@dataclass(frozen=True)
class TrainSettings:
    """How long and how each candidate is trained.

    `epochs` dense passes over the training set, then `finetune_epochs` passes with the
    pruning masks held. Adam with learning rate `lr` (the fine-tuning rate is `lr` times
    `finetune_lr_scale`), mini-batches of `batch_size`.
    """

    epochs: int = 3
    finetune_epochs: int = 2
    batch_size: int = 64
    lr: float = 2e-3
    finetune_lr_scale: float = 0.5
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        for setting in fields(self):
            value = getattr(self, setting.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"train.{setting.name} must be a number, got {value!r}")
        if self.epochs < 1:
            raise ValueError(f"train.epochs must be at least 1, got {self.epochs!r}")
        if self.finetune_epochs < 0:
            raise ValueError(f"train.finetune_epochs must be >= 0, got {self.finetune_epochs!r}")
        if self.batch_size < 1:
            raise ValueError(f"train.batch_size must be at least 1, got {self.batch_size!r}")
        if not self.lr > 0:
            raise ValueError(f"train.lr must be positive, got {self.lr!r}")


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then CPU; any other name is passed to torch."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python and torch; returns a CPU generator for batch order."""
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The optimizer every training phase uses: Adam over the model's parameters.

    Parameters are ordered by name, a pruned `weight_orig` in its weight's place, so the
    order (which an optimizer's saved state relies on) is the same before and after
    pruning attaches masks.
    """
    by_name = sorted(model.named_parameters(), key=lambda item: item[0].removesuffix("_orig"))
    return torch.optim.Adam([p for _, p in by_name], lr=lr, weight_decay=weight_decay)


def train_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
    before_step: Callable[[int], None] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    """One pass over (`x`, `y`) in an order drawn from `generator`; returns the mean loss.
    `before_step(i)` runs before the i-th optimizer step of the pass (pruning schedules).
    `augment`, when given, maps each batch's inputs to the ones the model is trained on
    (e.g. `Splits.augmenter(generator)`: random crops and flips).

    Raises FloatingPointError when the loss is not finite.
    """
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(x), generator=generator).to(x.device)
    total, batches = 0.0, 0
    for step, start in enumerate(range(0, len(x), batch_size)):
        if before_step:
            before_step(step)
        index = order[start : start + batch_size]
        inputs = x[index] if augment is None else augment(x[index])
        loss = loss_fn(model(inputs), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    mean_loss = total / batches
    if not math.isfinite(mean_loss):
        raise FloatingPointError(f"training loss became {mean_loss}")
    return mean_loss


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Share of samples whose top-1 prediction equals the label."""
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == y[start : start + batch_size]).sum())
    return correct / len(x)
