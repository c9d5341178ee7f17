"""Training, fine-tuning and evaluation loops over in-memory tensors; device and seeds."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from nas.checks import above, at_least, check_fields, setting
from nas.trial.distill import LossFn, cross_entropy
from nas.trial.metrics import logits_of, top1_accuracy


@dataclass(frozen=True)
class TrainSettings:
    """How long and how each candidate is trained.

    `epochs` dense passes over the training set, then `finetune_epochs` passes with the
    pruning masks held. Adam with learning rate `lr` (the fine-tuning rate is `lr` times
    `finetune_lr_scale`), mini-batches of `batch_size`. With `mixed_precision`, training
    on a CUDA GPU that supports bfloat16 runs under bfloat16 autocast; evaluation always
    runs in float32. The config group `train` (conf/train/ holds the defaults) but its
    nodes `polish` and `supernet`, every value checked.
    """

    epochs: int = setting(at_least(1))
    finetune_epochs: int = setting(at_least(0))
    batch_size: int = setting(at_least(1))
    lr: float = setting(above(0))
    finetune_lr_scale: float = setting(at_least(0))
    weight_decay: float = setting(at_least(0))
    mixed_precision: bool

    def __post_init__(self) -> None:
        check_fields(self, "train")


def autocast_dtype(device: torch.device, mixed_precision: bool) -> torch.dtype | None:
    """bfloat16 when mixed precision is on and `device` is a CUDA GPU that supports it
    (no loss scaling needed), else None: plain float32."""
    if mixed_precision and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def available_devices() -> list[str]:
    """The device names this machine can open: `auto`, `cpu`, then those of its
    accelerator, if it has one (e.g. `cuda`, `cuda:0`, `cuda:1`, or `mps`, `mps:0`)."""
    accelerator = torch.accelerator.current_accelerator(check_available=True)
    if accelerator is None:
        return ["auto", "cpu"]
    indices = range(torch.accelerator.device_count())
    return ["auto", "cpu", accelerator.type, *(f"{accelerator.type}:{i}" for i in indices)]


def resolve_device(name: str) -> torch.device:
    """The torch device `name` means: `auto` picks CUDA, then Apple MPS, then the CPU.
    ValueError for a name torch does not know or a device this machine cannot open."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"unknown device {name!r}: expected auto, cpu, cuda, cuda:N or mps"
        ) from None
    available = available_devices()
    if device.type != "cpu" and str(device) not in available:
        raise ValueError(
            f"device {name!r} is not available here; available: {', '.join(available)}"
        )
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
    mixed_precision: torch.dtype | None = None,
    loss_fn: LossFn = cross_entropy,
) -> float:
    """One pass over (`x`, `y`) in an order drawn from `generator`; returns the mean loss.
    `before_step(i)` runs before the i-th optimizer step of the pass (pruning schedules).
    `augment`, when given, maps each batch's inputs to the ones the model is trained on
    (e.g. `Splits.augmenter(generator)`: random crops and flips). `mixed_precision` is the
    autocast dtype of the forward pass (see `autocast_dtype`), None for float32.
    `loss_fn(inputs, logits, labels)` is the loss minimised (see `nas.trial.distill`).

    Raises FloatingPointError when the loss is not finite.
    """
    model.train()
    total, batches = torch.zeros((), device=x.device), 0  # summed on the device: no sync per step
    for step, (inputs, labels) in enumerate(shuffled_batches(x, y, batch_size, generator, augment)):
        if before_step:
            before_step(step)
        with torch.autocast(
            x.device.type, dtype=mixed_precision, enabled=mixed_precision is not None
        ):
            loss = loss_fn(inputs, model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().float()
        batches += 1
    return finite_mean(total, batches, "training loss")


def shuffled_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, labels) batches of one pass over (`x`, `y`) in an order drawn from
    `generator`, the inputs mapped by `augment` when given."""
    order = torch.randperm(len(x), generator=generator).to(x.device)
    for start in range(0, len(x), batch_size):
        index = order[start : start + batch_size]
        yield (x[index] if augment is None else augment(x[index])), y[index]


def finite_mean(total: torch.Tensor, count: int, what: str) -> float:
    """`total / count` as a float; raises FloatingPointError, naming `what`, when it is
    not finite."""
    mean = total.item() / count
    if not math.isfinite(mean):
        raise FloatingPointError(f"{what} became {mean}")
    return mean


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of samples whose top-1 prediction equals the label."""
    return top1_accuracy(logits_of(model, x), y)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Re-estimate every BatchNorm layer's running statistics from the images `x` (in
    batches of `batch_size`), as Once-for-All does for a network sliced out of a
    supernet: the statistics the shared weights were trained with belong to mixtures of
    networks. Each layer's running mean and (unbiased) variance are those of all its
    inputs over `x`, every image counting alike; each batch is normalised with its own
    statistics on the way, as in training. Leaves `model` in eval mode."""
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    sums: dict[nn.Module, list] = {norm: [0, 0.0, 0.0] for norm in norms}

    def accumulate(norm: nn.Module, inputs: tuple[torch.Tensor]) -> None:
        values = inputs[0].transpose(0, 1).flatten(1).double()  # channels first
        total = sums[norm]
        total[0] += values.shape[1]
        total[1] = total[1] + values.sum(1)
        total[2] = total[2] + values.square().sum(1)

    hooks = [norm.register_forward_pre_hook(accumulate) for norm in norms]
    model.train()
    try:
        for start in range(0, len(x), batch_size):
            model(x[start : start + batch_size])
    finally:
        for hook in hooks:
            hook.remove()
    for norm, (count, total, squares) in sums.items():
        if count < 2:
            continue
        mean = total / count
        variance = (squares / count - mean.square()) * count / (count - 1)
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(variance.clamp_min(0))
        norm.num_batches_tracked.zero_()
    model.eval()
