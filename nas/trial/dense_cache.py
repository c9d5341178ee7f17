"""Dense-trained weights kept in memory, so that candidates differing only in sparsity
train their shared architecture once."""

from __future__ import annotations

import json
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from nas.checks import at_least, checked


def arch_seed(seed: int, arch: Mapping[str, Any]) -> int:
    """The weight seed of architecture `arch` in a search seeded by `seed`: the same for
    every trial of that architecture, so that their dense weights are the same. It fits
    in 32 bits, all that torch's CPU generator uses of a seed."""
    return (zlib.crc32(json.dumps(arch, sort_keys=True).encode()) + seed * 2654435761) % 2**32


@dataclass(frozen=True)
class DenseState:
    """What dense training left: weights, the batch-order generator's state, and the
    dense model's validation accuracy and logits."""

    weights: dict[str, torch.Tensor]
    generator: torch.Tensor
    accuracy: float
    val_logits: torch.Tensor


class DenseCache:
    """The dense states of the `size` most recently used (architecture, seed) pairs.

    A cache belongs to one `TrialPipeline`, whose space, data, device and training
    settings are fixed, so the architecture and the seed are all that can change the
    dense weights. `size` 0 keeps nothing.
    """

    def __init__(self, size: int) -> None:
        self.size = checked("dense cache size", size, int, at_least(0))
        self._states: OrderedDict[tuple[str, int], DenseState] = OrderedDict()

    @staticmethod
    def key(arch: Mapping[str, Any], seed: int) -> tuple[str, int]:
        """The cache key of `arch` trained from `seed`."""
        return json.dumps(arch, sort_keys=True), seed

    def get(self, arch: Mapping[str, Any], seed: int) -> DenseState | None:
        """The cached dense state of `arch` and `seed`, or None."""
        state = self._states.get(self.key(arch, seed))
        if state is not None:
            self._states.move_to_end(self.key(arch, seed))
        return state

    def holds(self, arch: Mapping[str, Any], seed: int) -> bool:
        """Whether the dense state of `arch` and `seed` is kept (without using it)."""
        return self.key(arch, seed) in self._states

    def put(self, arch: Mapping[str, Any], seed: int, state: DenseState) -> None:
        """Keep `state`, dropping the least recently used entry beyond `size`."""
        if not self.size:
            return
        self._states[self.key(arch, seed)] = state
        self._states.move_to_end(self.key(arch, seed))
        while len(self._states) > self.size:
            self._states.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)
