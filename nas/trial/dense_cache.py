"""Dense-trained weights kept in memory, and in a store when one is given, so that
candidates differing only in sparsity train their shared architecture once, in a resumed
study too."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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


class DenseStore(Protocol):
    """Where dense states outlive the process, each under a name (see `DenseCache.name`)."""

    def holds(self, name: str) -> bool:
        """Whether a state is kept under `name`."""

    def load(self, name: str) -> DenseState | None:
        """The state kept under `name`, or None when there is none it can read."""

    def save(self, name: str, state: DenseState) -> None:
        """Keep `state` under `name`."""


class DenseCache:
    """The dense states of the `size` most recently used (architecture, seed) pairs, in
    memory; with a `store`, every state put is also saved there, and one that memory
    lacks (dropped, or kept by an earlier process) is loaded back from it.

    A cache belongs to one `TrialPipeline`, whose space, data, device and training
    settings are fixed, so the architecture and the seed are all that can change the
    dense weights. `size` 0 keeps nothing.
    """

    def __init__(self, size: int, store: DenseStore | None = None) -> None:
        self.size = checked("dense cache size", size, int, at_least(0))
        self.store = store
        self._states: OrderedDict[tuple[str, int], DenseState] = OrderedDict()

    @staticmethod
    def key(arch: Mapping[str, Any], seed: int) -> tuple[str, int]:
        """The cache key of `arch` trained from `seed`."""
        return json.dumps(arch, sort_keys=True), seed

    @classmethod
    def name(cls, arch: Mapping[str, Any], seed: int) -> str:
        """The store's name for the state of `arch` trained from `seed` (its cache key,
        hashed to fit a file name)."""
        text, seed = cls.key(arch, seed)
        return f"{hashlib.sha256(text.encode()).hexdigest()[:16]}-seed{seed}"

    def get(self, arch: Mapping[str, Any], seed: int) -> DenseState | None:
        """The cached dense state of `arch` and `seed` (from the store if memory lacks
        it), or None."""
        state = self._states.get(self.key(arch, seed))
        if state is not None:
            self._states.move_to_end(self.key(arch, seed))
        elif self.size and self.store is not None:
            state = self.store.load(self.name(arch, seed))
            if state is not None:
                self._remember(arch, seed, state)
        return state

    def holds(self, arch: Mapping[str, Any], seed: int) -> bool:
        """Whether the dense state of `arch` and `seed` is kept (without using it)."""
        if self.key(arch, seed) in self._states:
            return True
        return (
            bool(self.size) and self.store is not None and self.store.holds(self.name(arch, seed))
        )

    def put(self, arch: Mapping[str, Any], seed: int, state: DenseState) -> None:
        """Keep `state` (in the store too), dropping the least recently used entry in
        memory beyond `size`."""
        if not self.size:
            return
        self._remember(arch, seed, state)
        if self.store is not None:
            self.store.save(self.name(arch, seed), state)

    def _remember(self, arch: Mapping[str, Any], seed: int, state: DenseState) -> None:
        """Keep `state` in memory, dropping the least recently used entry beyond `size`."""
        self._states[self.key(arch, seed)] = state
        self._states.move_to_end(self.key(arch, seed))
        while len(self._states) > self.size:
            self._states.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)
