"""What every search space hands to the trial pipeline, and the shared sparsity grid."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
from torch import nn

from nas.checks import check_fields, checked, within
from nas.prune.allocation import METHODS


@dataclass(frozen=True)
class Candidate:
    """One sampled network: architecture choices plus a sparsity ratio per prunable layer.

    `sparsity` maps the module path of each prunable layer (as `model.get_submodule`
    takes it) to the share of its weights to remove.
    """

    arch: Mapping[str, Any]
    sparsity: Mapping[str, float] = field(default_factory=dict)
    allocation: Allocation | None = None

    @property
    def layers(self) -> list[str]:
        """Module paths of the prunable layers, in forward order."""
        return list(self.allocation.layers if self.allocation else self.sparsity)


@dataclass(frozen=True)
class Allocation:
    """One overall sparsity for a candidate's `layers` together, shared out among them by
    the allocation rule `method` (see `nas.prune.allocation`) once the dense weights are trained."""

    method: str
    sparsity: float
    layers: tuple[str, ...]
    caps: Mapping[str, float] = field(default_factory=dict)
    shifts: Mapping[str, float] = field(default_factory=dict)  # layer -> shift (see allocate)

    def clip(self, ratios: Mapping[str, float]) -> dict[str, float]:
        """The rule's per-layer `ratios`, each lowered to its layer's cap in `caps`."""
        return {name: min(ratio, self.caps.get(name, ratio)) for name, ratio in ratios.items()}


SHIFT_SUFFIX = ".shift"


def shift_param(layer: str) -> str:
    """The trial parameter that holds `layer`'s shift: `sparsity.<layer>.shift`."""
    return f"sparsity.{layer}{SHIFT_SUFFIX}"


def is_shift_param(name: str) -> bool:
    """Whether trial parameter `name` is a layer's shift rather than a sparsity ratio."""
    return name.startswith("sparsity.") and name.endswith(SHIFT_SUFFIX)


@dataclass(frozen=True)
class ShiftGrid:
    """Per-layer shifts of an allocation rule, sampled from `low` to `high` in steps of
    `step` (None: any value). A shift s moves the rule's share of the overall sparsity
    towards keeping 2^s times more of the layer (see `nas.prune.allocation.allocate`);
    0, the plain rule, must lie on the grid."""

    low: float = -2.0
    high: float = 2.0
    step: float | None = 0.5

    def __post_init__(self) -> None:
        check_fields(self, "space.sparsity.shift")
        if not self.low <= 0 <= self.high:
            raise ValueError(
                f"space.sparsity.shift must satisfy low <= 0 <= high (0: the plain rule), "
                f"got low={self.low!r} high={self.high!r}"
            )
        if self.step is not None and (self.step <= 0 or not _on_grid(0.0, self.low, self.step)):
            raise ValueError(
                f"space.sparsity.shift.step must be positive and put 0 on the grid from low, "
                f"got low={self.low!r} step={self.step!r}"
            )

    @classmethod
    def of(cls, shift: Mapping | ShiftGrid | None) -> ShiftGrid | None:
        """`shift` as a grid: a grid as is, a config dict as arguments, None as None (off)."""
        if shift is None or isinstance(shift, ShiftGrid):
            return shift
        if not isinstance(shift, Mapping):
            raise ValueError(
                f"space.sparsity.shift must be null or {{low, high, step}}, got {shift!r}"
            )
        unknown = sorted(set(shift) - {"low", "high", "step"})
        if unknown:
            raise ValueError(f"space.sparsity.shift has no key {', '.join(unknown)}")
        return cls(**shift)

    def suggest(self, trial: optuna.Trial, layer: str) -> float:
        """`sparsity.<layer>.shift`, sampled from the grid and rounded to 6 decimals."""
        value = trial.suggest_float(shift_param(layer), self.low, self.high, step=self.step)
        return round(value, 6)

    def nearest(self, value: float) -> float:
        """The grid's value closest to `value`."""
        clipped = min(max(value, self.low), self.high)
        if self.step is None:
            return round(clipped, 6)
        steps = math.floor(round((self.high - self.low) / self.step, 9))
        index = min(max(round((clipped - self.low) / self.step), 0), steps)
        return round(self.low + index * self.step, 6) + 0.0


def _on_grid(value: float, low: float, step: float) -> bool:
    return abs((value - low) / step - round((value - low) / step)) < 1e-8


@dataclass(frozen=True)
class SparsityGrid:
    """Sparsity ratios sampled from `low` to `high` in steps of `step` (None: any value):
    one per layer (`allocation: per_layer`), or one for the whole network
    (`sparsity.overall`) that an allocation rule of `nas.prune.allocation` shares out among the
    layers.

    `layer_high` caps the sparsity of the layers it names (module path -> cap in [0, 1)),
    e.g. from `nas sensitivity`. Per layer, a layer's ratio is sampled up to its cap (taken
    down to the step grid; a cap below `low` fixes the layer at its cap). Under an
    allocation rule, the rule's ratios are lowered to the caps, so the network keeps more
    weights than `sparsity.overall` asks for.

    `shift` (a `ShiftGrid` or its config dict; None: off) adds, under an allocation rule,
    a `sparsity.<layer>.shift` per layer that moves the rule's share between the layers;
    the caps still hold after it. With `per_layer` it is left off: each ratio is already
    the layer's own."""

    low: float = 0.0
    high: float = 0.95
    step: float | None = 0.05
    allocation: str = "per_layer"
    layer_high: Mapping[str, float] | None = None
    shift: ShiftGrid | Mapping | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high < 1.0:
            raise ValueError(
                f"sparsity bounds must satisfy 0 <= low <= high < 1, got low={self.low!r} "
                f"high={self.high!r}"
            )
        if self.step is not None and self.step <= 0:
            raise ValueError(f"sparsity step must be positive, got {self.step!r}")
        if self.allocation not in ("per_layer", *METHODS):
            raise ValueError(
                f"sparsity allocation must be per_layer or one of {', '.join(METHODS)}, "
                f"got {self.allocation!r}"
            )
        caps = self.layer_high
        checked("space.sparsity.layer_high", caps, Mapping[str, float] | None, within(0, 1, "[)"))
        object.__setattr__(self, "layer_high", dict(caps or {}))
        # independent per-layer ratios are each layer's own: no rule's share to shift
        shift = None if self.allocation == "per_layer" else ShiftGrid.of(self.shift)
        object.__setattr__(self, "shift", shift)

    @classmethod
    def of(cls, sparsity: Mapping | SparsityGrid | None) -> SparsityGrid:
        """`sparsity` as a grid: a grid as is, a config dict as arguments, None the default."""
        return sparsity if isinstance(sparsity, SparsityGrid) else cls(**(sparsity or {}))

    def candidate(
        self, trial: optuna.Trial, arch: Mapping[str, Any], layer_names: Iterable[str]
    ) -> Candidate:
        """The candidate `arch` with its sparsity sampled: `sparsity.<layer>` for each layer,
        or `sparsity.overall` under an allocation rule, then `sparsity.<layer>.shift` for
        each layer when shifts are on. Values are rounded to 6 decimals, dropping the float
        noise of stepped grids."""
        if self.allocation == "per_layer":
            return Candidate(
                arch, {name: self._suggest(trial, name, *self.bounds(name)) for name in layer_names}
            )
        overall = self._suggest(trial, "overall", self.low, self.high)
        layers = tuple(layer_names)
        caps = {name: cap for name, cap in self.layer_high.items() if name in layers}
        shifts = {name: self.shift.suggest(trial, name) for name in layers} if self.shift else {}
        allocation = Allocation(self.allocation, overall, layers, caps, shifts)
        return Candidate(arch, allocation=allocation)

    def bounds(self, layer: str) -> tuple[float, float]:
        """The range `sparsity.<layer>` is sampled from: [low, high], with high lowered to
        the layer's cap on the step grid, or [cap, cap] when the cap is below `low`."""
        cap = self.layer_high.get(layer, self.high)
        if cap >= self.high:
            return self.low, self.high
        if cap <= self.low:
            return cap, cap
        if self.step is None:
            return self.low, cap
        steps = math.floor(round((cap - self.low) / self.step, 9))
        return self.low, round(self.low + steps * self.step, 6)

    def _suggest(self, trial: optuna.Trial, name: str, low: float, high: float) -> float:
        return round(trial.suggest_float(f"sparsity.{name}", low, high, step=self.step), 6)


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


def finds_layers_on_data(space: SearchSpace) -> bool:
    """Whether `space` needs the data's input shape and class count before it can sample
    (one derived from a network, with a `bind(in_shape, n_classes)` method). Spaces
    written for the project do not."""
    return callable(getattr(space, "bind", None))


def bind_to_data(space: SearchSpace, in_shape: tuple[int, ...], n_classes: int) -> None:
    """Tell a space that `finds_layers_on_data` the data's input shape and class count;
    ValueError when they do not fit it. Other spaces need nothing."""
    if finds_layers_on_data(space):
        space.bind(tuple(in_shape), n_classes)


class SearchSpace(Protocol):
    """A search space: `sample` names every trial parameter, `build` makes the network."""

    def sample(self, trial: optuna.Trial) -> Candidate: ...

    def build(
        self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int
    ) -> nn.Module: ...

    def describe(self, candidate: Candidate) -> str: ...
