"""Training a supernet with the sandwich rule (Yu et al. 2019, as Once-for-All trains its
elastic stages): every step runs the largest network, the smallest and some random ones
on the same batch, sums their gradients and takes one optimizer step. With in-place
distillation the smaller networks learn the largest one's outputs of that step."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import optuna
import torch
import torch.nn.functional as F

from nas.data import Splits
from nas.space import Candidate
from nas.supernet.elastic import Supernet
from nas.trial.train import finite_mean, shuffled_batches


@dataclass(frozen=True)
class SupernetSettings:
    """How the supernet is trained, and how a trial recalibrates what it slices out.

    `epochs` passes over the training set; each step runs `subnets` networks (the
    largest, the smallest and `subnets - 2` drawn at random), so one supernet epoch costs
    `subnets` epochs of the budget. Adam with learning rate `lr`. With `distill`, every
    network but the largest learns the largest's outputs (in-place distillation), after
    the first `distill_warmup` epochs, in which they learn the labels: an untrained
    largest network's outputs are nearly uniform, and a small network matches them by
    switching its ReLUs off for good (a hidden layer after a wide flatten dies). With
    `covering`, one of each step's random networks is instead the next of the supernet's
    other covering networks, in turn (for `cnn`, the widest of every depth with and
    without its hidden layer), so that tensors only they hold whole (a shallow network's
    hidden layer) train at full size every few steps; it changes nothing where the
    supernet has one covering network. A trial re-estimates BatchNorm statistics on
    `bn_images` training images.
    """

    epochs: int = 6
    subnets: int = 4
    lr: float = 2e-3
    distill: bool = True
    distill_warmup: int = 1
    covering: bool = False
    bn_images: int = 2048

    def __post_init__(self) -> None:
        for name, least in (("epochs", 1), ("subnets", 1), ("bn_images", 1), ("distill_warmup", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(
                    f"train.supernet.{name} must be a whole number >= {least}, got {value!r}"
                )
        if self.subnets < 2:
            raise ValueError(
                f"train.supernet.subnets must be at least 2 (largest and smallest), "
                f"got {self.subnets!r}"
            )
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float) or self.lr <= 0:
            raise ValueError(f"train.supernet.lr must be positive, got {self.lr!r}")
        for name in ("distill", "covering"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"train.supernet.{name} must be true or false, got {getattr(self, name)!r}"
                )
        if self.covering and self.subnets < 3:
            raise ValueError(
                f"train.supernet.covering needs train.supernet.subnets >= 3 (largest, "
                f"smallest and the covering one), got {self.subnets!r}"
            )

    def distills_in(self, epoch: int) -> bool:
        """Whether the networks other than the largest learn its outputs in `epoch` (from 1)."""
        return self.distill and epoch > self.distill_warmup

    @property
    def epoch_cost(self) -> int:
        """Budget epochs one supernet epoch costs: one sub-network pass per network run."""
        return self.subnets


class RandomArchitectures:
    """Architectures of a space drawn at random, reproducibly from `seed`, by letting the
    space sample from an in-memory study with Optuna's RandomSampler."""

    def __init__(self, sample: Callable[[optuna.Trial], Candidate], seed: int) -> None:
        self.sample = sample
        self.study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))

    def draw(self) -> Candidate:
        """One architecture (its sparsity, also drawn, is not used)."""
        trial = self.study.ask()
        candidate = self.sample(trial)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)  # keeps the storage small
        return candidate


def sandwich_epoch(
    supernet: Supernet,
    optimizer: torch.optim.Optimizer,
    splits: Splits,
    settings: SupernetSettings,
    smallest: Candidate,
    draws: RandomArchitectures,
    batch_size: int,
    generator: torch.Generator,
    epoch: int,
) -> float:
    """Epoch `epoch` (from 1): one pass over the training split by the sandwich rule;
    returns the largest network's mean loss. Raises FloatingPointError when it is not
    finite."""
    supernet.train()
    distill = settings.distills_in(epoch)
    rotation = itertools.cycle(supernet.covering[1:]) if settings.covering else iter(())
    augment = splits.augmenter(generator)
    total, batches = torch.zeros((), device=splits.train_x.device), 0
    for inputs, labels in shuffled_batches(
        splits.train_x, splits.train_y, batch_size, generator, augment
    ):
        optimizer.zero_grad(set_to_none=True)
        logits = supernet(inputs, supernet.largest)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        soft = F.softmax(logits.detach(), dim=1)
        others = [smallest, *itertools.islice(rotation, 1)]
        others += [draws.draw() for _ in range(settings.subnets - len(others) - 1)]
        for candidate in others:
            out = supernet(inputs, candidate)
            if distill:
                F.kl_div(F.log_softmax(out, dim=1), soft, reduction="batchmean").backward()
            else:
                F.cross_entropy(out, labels).backward()
        optimizer.step()
        total += loss.detach()
        batches += 1
    return finite_mean(total, batches, "supernet training loss")
