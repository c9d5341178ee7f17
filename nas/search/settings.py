"""The `study` config group as one checked value."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from nas.trial.objectives import DEFAULT


def _check_whole_number(name: str, value, minimum: int) -> None:
    """Raise ValueError unless `value` is an int (not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _check_shifts(shifts, warm_start: bool) -> None:
    """Raise ValueError unless `shifts` is None or maps layer names to finite numbers, and is
    None when the warm start is off."""
    if shifts is None:
        return
    if not isinstance(shifts, Mapping):
        raise ValueError(f"study.warm_start_shifts must map layers to shifts, got {shifts!r}")
    for layer, shift in shifts.items():
        number = isinstance(shift, int | float) and not isinstance(shift, bool)
        if not (number and math.isfinite(shift)):
            raise ValueError(f"study.warm_start_shifts: {layer}={shift!r} is not a number")
    if not warm_start:
        raise ValueError("study.warm_start_shifts is set but study.warm_start is false")


@dataclass(frozen=True)
class StudySettings:
    """Where the study lives, how many trials it needs, and how dead trials are handled.

    See conf/study/default.yaml for what each setting means.
    """

    name: str
    objectives: tuple[str, ...] = DEFAULT
    storage: str | None = None
    artifacts: str | None = None
    n_trials: int = 30
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retry: int = 3
    max_consecutive_failures: int = 5
    checkpoint_over_epochs: int = 5
    max_epochs: int | None = None
    max_nonzero_params: int | None = None
    max_flops: int | None = None
    min_accuracy_kept: float | None = None
    dense_cache: int = 8
    early_exit: str = "never"
    early_exit_margin: float = 0.02
    siblings: int = 0
    sibling_factor: float = 0.5
    sibling_rule: str = "sparser"
    sibling_tolerance: float = 0.02
    warm_start: bool = False
    warm_start_shifts: Mapping[str, float] | None = None
    revisit_share: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.warm_start, bool):
            raise ValueError(f"study.warm_start must be true or false, got {self.warm_start!r}")
        _check_shifts(self.warm_start_shifts, self.warm_start)
        _check_whole_number("study.n_trials", self.n_trials, 1)
        _check_whole_number("study.heartbeat_interval", self.heartbeat_interval, 1)
        _check_whole_number("study.grace_period", self.grace_period, self.heartbeat_interval + 1)
        _check_whole_number("study.max_retry", self.max_retry, 0)
        _check_whole_number("study.max_consecutive_failures", self.max_consecutive_failures, 1)
        _check_whole_number("study.checkpoint_over_epochs", self.checkpoint_over_epochs, 0)
        _check_whole_number("study.dense_cache", self.dense_cache, 0)
        for name in ("max_epochs", "max_nonzero_params", "max_flops"):
            if getattr(self, name) is not None:
                _check_whole_number(f"study.{name}", getattr(self, name), 1)
        kept = self.min_accuracy_kept
        if kept is not None and (
            isinstance(kept, bool) or not isinstance(kept, int | float) or not 0 < kept <= 1
        ):
            raise ValueError(f"study.min_accuracy_kept must be in (0, 1] or null, got {kept!r}")
