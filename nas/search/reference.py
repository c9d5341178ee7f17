"""One architecture of a search space, given by parameters or by default its largest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial

from nas.errors import UsageError
from nas.space import Candidate, SearchSpace, is_shift_param, shift_param


def holds(distribution: BaseDistribution, value: Any) -> bool:
    """Whether `value` is one of `distribution`'s values (in its range and on its step,
    or one of its choices), as Optuna checks a trial's parameters."""
    try:
        create_trial(
            state=TrialState.WAITING, params={"p": value}, distributions={"p": distribution}
        )
    except ValueError:
        return False
    return True


class ReferenceTrial:
    """Stands in for an Optuna trial while a space samples one architecture: answers each
    architecture parameter from `given`, else with its largest value (the highest int or
    float, the largest numeric choice, the last other choice; with `smallest`, the
    opposite), each `sparsity.*` ratio with its lowest value (dense) and each shift with 0
    (the plain allocation rule). `params` and `distributions` record what was asked, so the
    architecture can be queued into a study."""

    def __init__(self, given: Mapping[str, Any] | None = None, smallest: bool = False) -> None:
        self.given = dict(given or {})
        self.smallest = smallest
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def _answer(self, name: str, distribution: BaseDistribution, largest: Any, lowest: Any):
        if self.smallest:
            largest = lowest
        if name.startswith("sparsity."):
            value = 0.0 if is_shift_param(name) else lowest
        elif name in self.given:
            value = self.given[name]
            if not holds(distribution, value):
                raise UsageError(
                    f"baseline.arch: {name}={value!r} is outside the space's {distribution}"
                )
        else:
            value = largest
        self.params[name] = value
        self.distributions[name] = distribution
        return value

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        """The given value of `name`, else `high`."""
        return self._answer(name, IntDistribution(low, high, log=log, step=step), high, low)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        """The given value of `name`, else `high` (`low` for a sparsity)."""
        return self._answer(name, FloatDistribution(low, high, log=log, step=step), high, low)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """The given value of `name`, else the largest numeric choice (or the last one);
        with `smallest`, the smallest (or the first)."""
        numeric = all(isinstance(c, int | float) and not isinstance(c, bool) for c in choices)
        largest, smallest = (max(choices), min(choices)) if numeric else (choices[-1], choices[0])
        return self._answer(name, CategoricalDistribution(choices), largest, smallest)

    def architecture(self) -> dict[str, Any]:
        """The architecture parameters answered (those not about sparsity)."""
        return {k: v for k, v in self.params.items() if not k.startswith("sparsity.")}


def smallest_architecture(
    space: SearchSpace, shifts: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """The architecture parameters of `space`'s smallest architecture and, for each of its
    layers that `shifts` names, `sparsity.<layer>.shift` at the given value. A shift the
    space's shift grid does not hold, or shifts for a space without them, is a UsageError."""
    trial = ReferenceTrial(smallest=True)
    space.sample(trial)
    params = trial.architecture()
    if not shifts:
        return params
    grids = {n: d for n, d in trial.distributions.items() if is_shift_param(n)}
    if not grids:
        raise UsageError(
            "study.warm_start_shifts needs shifts in the space: set space.sparsity.shift "
            "(under an allocation rule)"
        )
    for layer, shift in shifts.items():
        name = shift_param(layer)
        if name not in grids:
            continue  # a layer the smallest architecture does not have
        if not holds(grids[name], float(shift)):
            raise UsageError(
                f"study.warm_start_shifts: {layer}={shift!r} is not on the space's shift grid "
                f"{grids[name]}"
            )
        params[name] = float(shift)
    return params


def reference_candidate(
    space: SearchSpace, given: Mapping[str, Any] | None = None
) -> tuple[Candidate, ReferenceTrial]:
    """The candidate of `space` with the architecture parameters `given` (the rest at their
    largest) and no sparsity, and the trial that answered it. A given parameter the space
    never asked for is a UsageError."""
    trial = ReferenceTrial(given)
    candidate = space.sample(trial)
    unused = sorted(set(trial.given) - set(trial.params))
    if unused:
        asked = ", ".join(sorted(trial.architecture()))
        raise UsageError(
            f"baseline.arch: the space has no parameter {', '.join(unused)} for this "
            f"architecture (it asked for: {asked})"
        )
    return candidate, trial
