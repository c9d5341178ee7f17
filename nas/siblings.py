"""Cheap extra points: once a trial has trained its architecture densely, queue the same
architecture at higher sparsities, which reuse the cached dense weights."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState


def sparser(value: float, factor: float, distribution: FloatDistribution) -> float:
    """The sparsity whose density is `factor` times that of `value`, on the grid of
    `distribution` and within its bounds."""
    target = 1.0 - (1.0 - value) * factor
    if distribution.step:
        steps = round((target - distribution.low) / distribution.step)
        target = distribution.low + steps * distribution.step
    return round(min(max(target, distribution.low), distribution.high), 6)


class Siblings:
    """After a finished trial that trained its architecture densely
    (not from the cache), queue `count` trials of the same architecture with the density
    (1 - ratio) of every sparsity parameter multiplied by `factor`, `factor`², ...
    Each costs fine-tuning epochs only while the dense weights stay in this process's
    cache; another worker that picks one up trains the architecture again."""

    def __init__(self, count: int, factor: float = 0.5) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"study.siblings must be a whole number >= 0, got {count!r}")
        if not 0 < factor < 1:
            raise ValueError(f"study.sibling_factor must be in (0, 1), got {factor!r}")
        self.count = count
        self.factor = factor

    def queue(self, study: optuna.Study, trial: FrozenTrial, room: int) -> None:
        """Queue the siblings of `trial`, at most `room` of them (the trials the study's
        budget still has, so that no queued trial is left over when it ends)."""
        if trial.state != TrialState.COMPLETE or trial.user_attrs.get("dense_cached", True):
            return
        waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        for power in range(1, min(self.count, room - waiting) + 1):
            params = {
                name: sparser(value, self.factor**power, trial.distributions[name])
                if name.startswith("sparsity.")
                else value
                for name, value in trial.params.items()
            }
            if params != trial.params:
                study.enqueue_trial(params, skip_if_exists=True)
