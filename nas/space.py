"""What every search space hands to the trial pipeline, and the shared sparsity grid."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
from torch import nn


@dataclass(frozen=True)
class Candidate:
    """One sampled network: architecture choices plus a sparsity ratio per prunable layer.

    `sparsity` maps the module path of each prunable layer (as `model.get_submodule`
    takes it) to the share of its weights to remove.
    """

    arch: Mapping[str, Any]
    sparsity: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SparsityGrid:
    """Sparsity ratios sampled from `low` to `high` in steps of `step`."""

    low: float = 0.0
    high: float = 0.95
    step: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high < 1.0:
            raise ValueError(
                f"sparsity bounds must satisfy 0 <= low <= high < 1, got low={self.low!r} "
                f"high={self.high!r}"
            )
        if self.step <= 0:
            raise ValueError(f"sparsity step must be positive, got {self.step!r}")

    @classmethod
    def of(cls, sparsity: Mapping | SparsityGrid | None) -> SparsityGrid:
        """`sparsity` as a grid: a grid as is, a config dict as arguments, None the default."""
        return sparsity if isinstance(sparsity, SparsityGrid) else cls(**(sparsity or {}))

    def suggest(self, trial: optuna.Trial, layer_names: Iterable[str]) -> dict[str, float]:
        """Sample `sparsity.<layer>` for each layer; returns layer path -> ratio.

        Ratios are rounded to 6 decimals, dropping the float noise of stepped grids.
        """
        return {
            name: round(
                trial.suggest_float(f"sparsity.{name}", self.low, self.high, step=self.step), 6
            )
            for name in layer_names
        }


def inclusive_range(name: str, bounds: Sequence[int]) -> tuple[int, int]:
    """`bounds` as (min, max) with 1 <= min <= max; ValueError naming `space.<name>`."""
    if len(bounds) != 2 or not 1 <= bounds[0] <= bounds[1]:
        raise ValueError(f"space.{name} must be [min, max] with 1 <= min <= max, got {bounds!r}")
    return int(bounds[0]), int(bounds[1])


def positive_choices(name: str, choices: Sequence[int]) -> list[int]:
    """`choices` as ints, all >= 1 and at least one; ValueError naming `space.<name>`."""
    if not choices or any(int(c) < 1 for c in choices):
        raise ValueError(f"space.{name} must be positive integers, got {choices!r}")
    return [int(c) for c in choices]


class SearchSpace(Protocol):
    """A search space: `sample` names every trial parameter, `build` makes the network."""

    def sample(self, trial: optuna.Trial) -> Candidate: ...

    def build(
        self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int
    ) -> nn.Module: ...

    def describe(self, candidate: Candidate) -> str: ...
