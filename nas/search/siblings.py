"""Cheap extra points: once a trial has trained its architecture densely, queue the same
architecture at other sparsities, which reuse the cached dense weights."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from nas.record.attrs import DENSE_ACCURACY, DENSE_CACHED, DENSITY_FACTOR, POLISH_OF, SIBLING_OF
from nas.record.measures import metric, objective_names
from nas.search.follow_up import FollowUp, QueuedTrial, SearchState, enqueue
from nas.search.revisits import architecture_key
from nas.space import is_shift_param

RULES = ("sparser", "knee")


def scaled(value: float, factor: float, distribution: FloatDistribution) -> float:
    """The sparsity whose density is `factor` times that of `value`, on the grid of
    `distribution` and within its bounds."""
    target = 1.0 - (1.0 - value) * factor
    if distribution.step:
        steps = round((target - distribution.low) / distribution.step)
        target = distribution.low + steps * distribution.step
    return round(min(max(target, distribution.low), distribution.high), 6)


def next_factor(held: list[float], broke: list[float], factor: float) -> float:
    """The density factor (relative to the first trial's) to try next, given the factors
    whose accuracy `held` within tolerance of the dense network's and those where it
    `broke`: sparser by `factor` while nothing broke, denser by 1/`factor` while nothing
    held, else halfway in log density between the sparsest that held and the densest
    sparser one that broke."""
    if not broke:
        return min(held) * factor
    if not held:
        return max(broke) / factor
    sparsest_held = min(held)
    below = [f for f in broke if f < sparsest_held]
    if not below:  # broke only where denser than something that held: go on sparser
        return sparsest_held * factor
    return math.sqrt(max(below) * sparsest_held)


def sibling_room(study: optuna.Study, remaining: int) -> int:
    """How many trials siblings may take when the budget has `remaining` trials left to
    start: those beyond one for each distinct architecture the study has finished, so
    that a small budget goes to new architectures first."""
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    architectures = {architecture_key(trial.params) for trial in finished}
    return remaining - len(architectures)


@dataclass(frozen=True)
class Siblings(FollowUp):
    """After a finished trial that trained its architecture densely (not from the cache),
    queue `count` more trials of the same architecture with the density (1 - ratio) of
    every sparsity parameter scaled, shifts kept. Rule `sparser` queues them at once, at
    densities times `factor`, `factor`², ...; rule `knee` queues one at a time and looks for the
    sparsest density whose accuracy stays within `tolerance` of the dense network's (see
    `next_factor`). Each costs fine-tuning epochs only while the dense weights stay in
    this process's cache; another worker that picks one up trains the architecture again.
    A sibling whose parameters repeat an existing trial's (a sparsity already at its
    bound) is not queued. Siblings carry the user attrs `sibling_of` (the first trial's
    number) and `density_factor`. `StudySettings` checks the settings (`study.siblings`,
    `study.sibling_factor`, `study.sibling_rule`, `study.sibling_tolerance`)."""

    count: int
    factor: float
    rule: str
    tolerance: float

    def queue_after(self, study: optuna.Study, trial: FrozenTrial, state: SearchState) -> None:
        """Queue the siblings due after `trial` (none after a polish), as many as the
        trials left to start leave (see `sibling_room`), as fit before the budget's
        reserved last share and as the epochs left pay for."""
        if POLISH_OF.on(trial):
            return
        room = sibling_room(study, state.to_start)
        for limit in (state.before_reserve, state.paid_for(trial.params)):
            if limit is not None:
                room = min(room, limit)
        self.queue(study, trial, room)

    def queue(self, study: optuna.Study, trial: FrozenTrial, room: int) -> None:
        """Queue the siblings due after `trial`, at most `room` less those waiting (the
        trials the study's budget still has, so that none is left over when it ends)."""
        enqueue(study, self._due(study, trial), room)

    def _due(self, study: optuna.Study, trial: FrozenTrial) -> Iterator[QueuedTrial]:
        """The siblings due after `trial`, first first."""
        if trial.state != TrialState.COMPLETE or self.count == 0:
            return
        if SIBLING_OF.on(trial):
            if self.rule != "knee":
                return
            first = study.get_trials(deepcopy=False)[SIBLING_OF.of(trial)]
        elif DENSE_CACHED.on(trial) and not DENSE_CACHED.of(trial):
            first = trial
        else:
            return
        if self.rule == "sparser":
            factors = [self.factor**power for power in range(1, self.count + 1)]
        else:
            family = self._family(study, first)
            if len(family) - 1 >= self.count:
                return
            held, broke = [], []
            names = objective_names(study)
            for member in family:
                accuracy = metric(member, "accuracy", names)
                ok = accuracy >= DENSE_ACCURACY.of(member) - self.tolerance
                (held if ok else broke).append(DENSITY_FACTOR.of(member))
            factors = [next_factor(held, broke, self.factor)]
        for factor in factors:
            params = {
                name: scaled(value, factor, first.distributions[name])
                if name.startswith("sparsity.") and not is_shift_param(name)
                else value
                for name, value in first.params.items()
            }
            yield QueuedTrial(params, {**SIBLING_OF(first.number), **DENSITY_FACTOR(factor)})

    @staticmethod
    def _family(study: optuna.Study, first: FrozenTrial) -> list[FrozenTrial]:
        """`first` and its finished siblings."""
        siblings = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if SIBLING_OF.of(t) == first.number
        ]
        return [first, *siblings]
