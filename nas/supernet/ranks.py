"""Data-parallel supernet training on `torch.distributed`: every process (rank) runs the
same sandwich steps on its own contiguous share of each batch, and the gradients are
summed over the ranks before each optimizer step, so that every rank holds the same
weights, those one process would reach on the whole batch (to floating-point rounding).

The sandwich rule runs several networks per step, each on its own subset of the shared
weights; `DistributedDataParallel` reduces gradients during every backward pass and
would need `no_sync` and `find_unused_parameters` to follow it. Reducing once per step,
all gradients in one flat tensor, is what its reducer does, without those conditions.

`joined()` reads the environment `torchrun` sets (`WORLD_SIZE`, `RANK`, `LOCAL_RANK`)
and starts the process group: NCCL when CUDA is there, gloo on CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's place among `world` processes training one supernet."""

    rank: int = 0
    world: int = 1

    @property
    def leader(self) -> bool:
        """Whether this process is rank 0, the one that touches the study's storage."""
        return self.rank == 0

    def share(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's contiguous share of each of `tensors` (along the first dimension;
        sizes differ by at most one where the batch does not divide)."""
        if self.world == 1:
            return tensors
        return tuple(torch.tensor_split(t, self.world)[self.rank] for t in tensors)

    def sum_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Replace every gradient of `parameters` by its sum over the ranks (one
        all-reduce of them all, flattened). Every rank must hold the same gradients'
        shapes, which it does when every rank ran the same networks."""
        if self.world == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        for grad, summed in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
            grad.copy_(summed.view_as(grad))

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """`value` summed over the ranks (a copy; no gradient)."""
        if self.world == 1:
            return value
        summed = value.detach().clone()
        dist.all_reduce(summed)
        return summed

    def leader_first(self, make: Callable[[], T]) -> T:
        """`make()` on rank 0, then on the other ranks once rank 0's is done (rank 0
        creates what the others only open)."""
        if self.leader:
            made = make()
        self.from_leader(None)
        if not self.leader:
            made = make()
        return made

    def from_leader(self, value: T) -> T:
        """Rank 0's `value`, on every rank (pickled; other ranks pass anything)."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


ALONE = Ranks()


def joined() -> Ranks:
    """This process's ranks as `torchrun` set them, the process group started (and, with
    CUDA, this process's GPU `LOCAL_RANK` made current); `ALONE` outside `torchrun`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return ALONE
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Ranks(rank=dist.get_rank(), world=dist.get_world_size())


def leave(ranks: Ranks) -> None:
    """End the process group `joined` started, if any."""
    if ranks.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
