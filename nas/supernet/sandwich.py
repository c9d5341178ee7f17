"""Training a supernet with the sandwich rule (Yu et al. 2019, as Once-for-All trains its
elastic stages): every step runs the largest network, the smallest and some random ones
on the same batch, sums their gradients and takes one optimizer step. With in-place
distillation the smaller networks learn the largest one's outputs of that step. The
largest network may run in only every n-th step, the costliest part of a step."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
import torch
import torch.nn.functional as F

from nas.checks import BadSetting, above, at_least, check_fields, setting
from nas.data import Splits
from nas.prune.counting import dense_flops
from nas.space import Candidate
from nas.supernet.elastic import Supernet
from nas.supernet.ranks import ALONE, Ranks
from nas.trial.train import finite_mean, shuffled_batches


@dataclass(frozen=True)
class SupernetSettings:
    """How the supernet is trained, and how a trial recalibrates what it slices out.

    `epochs` passes over the training set; each step runs `subnets` networks (the
    largest, the smallest and `subnets - 2` drawn at random), except that the largest runs
    only in every `largest_every`-th step (the first of each n), so one supernet epoch
    costs about `subnets - 1 + 1/n` epochs of the budget. Adam with learning rate `lr`.
    With `distill`, every network but the largest learns the largest's outputs of the
    step (in-place distillation; in a step without the largest, the labels), after the
    first `distill_warmup` epochs, in which they learn the labels: an untrained largest
    network's outputs are nearly uniform, and a small network matches them by
    switching its ReLUs off for good (a hidden layer after a wide flatten dies). With
    `covering`, one of each step's random networks is instead the next of the supernet's
    other covering networks, in turn (for `cnn`, the widest of every depth with and
    without its hidden layer), so that tensors only they hold whole (a shallow network's
    hidden layer) train at full size every few steps; it changes nothing where the
    supernet has one covering network. A trial re-estimates BatchNorm statistics on
    `bn_images` training images. The config node `train.supernet` (conf/train/supernet.yaml
    holds the defaults), every value checked.
    """

    epochs: int = setting(at_least(1))
    subnets: int = setting(at_least(2))  # the largest and the smallest
    lr: float = setting(above(0))
    distill: bool
    distill_warmup: int = setting(at_least(0))
    largest_every: int = setting(at_least(1))
    covering: bool
    bn_images: int = setting(at_least(1))

    def __post_init__(self) -> None:
        check_fields(self, "train.supernet")
        if self.covering and self.subnets < 3:
            raise BadSetting(
                f"train.supernet.covering needs train.supernet.subnets >= 3 (largest, "
                f"smallest and the covering one), got {self.subnets!r}"
            )

    def distills_in(self, epoch: int) -> bool:
        """Whether the networks other than the largest learn its outputs in `epoch` (from 1)."""
        return self.distill and epoch > self.distill_warmup

    @property
    def epoch_cost(self) -> float:
        """Budget epochs one supernet epoch costs, about (exactly when `largest_every` is 1):
        one sub-network pass per network run. `sandwich_epoch` counts them exactly."""
        return self.subnets - 1 + 1 / self.largest_every


@dataclass
class EpochTally:
    """What one sandwich epoch ran: the largest network's mean loss, the sub-network passes
    over the training split (budget epochs) and the forward FLOPs summed over every sample
    of every network run."""

    loss: float
    passes: float
    flops: int


@dataclass
class ForwardFlops:
    """Forward FLOPs per sample of the networks sliced out of `supernet` (`flops`' count of
    the dense network), computed once per architecture."""

    supernet: Supernet
    in_shape: tuple[int, ...]
    known: dict[str, int] = field(default_factory=dict)

    def __call__(self, candidate: Candidate) -> int:
        key = repr(sorted(candidate.arch.items()))
        if key not in self.known:
            self.known[key] = dense_flops(self.supernet.build(candidate), self.in_shape)
        return self.known[key]


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


@dataclass(frozen=True)
class BatchMean:
    """A loss's mean over a batch of `size` samples of which this rank holds a share:
    the share's sum over `size`, so that the ranks' losses (and gradients) add up to the
    whole batch's mean. One rank alone takes the loss's own mean (`batchmean` for KL)."""

    size: int
    ranks: Ranks

    def __call__(self, loss: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
        if self.ranks.world == 1:
            return loss(*args, reduction="batchmean" if loss is F.kl_div else "mean")
        return loss(*args, reduction="sum") / self.size


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
    ranks: Ranks = ALONE,
) -> EpochTally:
    """Epoch `epoch` (from 1): one pass over the training split by the sandwich rule.
    With several `ranks`, each runs every network on its share of each batch and the
    gradients are summed over them before each step (`nas.supernet.ranks`); every rank
    draws the same batches and networks. Raises FloatingPointError when the largest
    network's mean loss is not finite."""
    supernet.train()
    distill = settings.distills_in(epoch)
    rotation = itertools.cycle(supernet.covering[1:]) if settings.covering else iter(())
    augment = splits.augmenter(generator)
    flops_of = ForwardFlops(supernet, splits.in_shape)
    total, batches = torch.zeros((), device=splits.train_x.device), 0
    samples, flops = 0, 0
    for step, (batch, batch_labels) in enumerate(
        shuffled_batches(splits.train_x, splits.train_y, batch_size, generator, augment)
    ):
        inputs, labels = ranks.share(batch, batch_labels)
        mean = BatchMean(len(batch), ranks)
        optimizer.zero_grad(set_to_none=True)
        ran, soft = [], None
        if step % settings.largest_every == 0:
            logits = supernet(inputs, supernet.largest, ranks)
            loss = mean(F.cross_entropy, logits, labels)
            loss.backward()
            soft = F.softmax(logits.detach(), dim=1) if distill else None
            ran.append(supernet.largest)
            total += loss.detach()
            batches += 1
        others = [smallest, *itertools.islice(rotation, 1)]
        others += [draws.draw() for _ in range(settings.subnets - len(others) - 1)]
        for candidate in others:
            out = supernet(inputs, candidate, ranks)
            if soft is not None:
                mean(F.kl_div, F.log_softmax(out, dim=1), soft).backward()
            else:
                mean(F.cross_entropy, out, labels).backward()
        ranks.sum_gradients(supernet.parameters())
        optimizer.step()
        ran += others
        samples += len(batch) * len(ran)
        flops += len(batch) * sum(map(flops_of, ran))
    return EpochTally(
        loss=finite_mean(ranks.total(total), batches, "supernet training loss"),
        passes=samples / len(splits.train_x),
        flops=flops,
    )
