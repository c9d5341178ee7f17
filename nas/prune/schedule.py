"""Pruning schedules: when during fine-tuning each layer is pruned, and how far.

A schedule maps a fine-tuning step (0 to `total_steps` - 1, over all fine-tuning epochs)
to the ratios to prune to before that step, or None to leave the masks as they are.
Every schedule ends at the sampled ratios and spends the same fine-tuning epochs, so
schedules compare at equal budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

from nas.checks import at_least, checked, within

Ratios = Mapping[str, float]


class Schedule(Protocol):
    """When, and to which ratios, fine-tuning prunes."""

    def ratios_at(self, step: int, total_steps: int, final: Ratios) -> Ratios | None:
        """The ratios to prune to before fine-tuning step `step`, or None."""


class OneShot:
    """Prune to the final ratios before the first fine-tuning step."""

    def ratios_at(self, step: int, total_steps: int, final: Ratios) -> Ratios | None:
        """The ratios to prune to before `step`, or None."""
        return final if step == 0 else None


ONE_SHOT = OneShot()


class Iterative:
    """`rounds` rounds of pruning and fine-tuning. Round r (1-based) starts by pruning
    each layer to 1 - (1 - final)^(r / rounds): the same share of the remaining weights
    goes each round, as in iterative magnitude pruning. The last round prunes to the final
    ratios themselves (the formula can miss them by a rounding error)."""

    def __init__(self, rounds: int = 3) -> None:
        self.rounds = checked("schedule.rounds", rounds, int, at_least(1))

    def ratios_at(self, step: int, total_steps: int, final: Ratios) -> Ratios | None:
        """The ratios to prune to before `step`, or None."""
        starts = [math.floor(r * total_steps / self.rounds) for r in range(self.rounds)]
        if step not in starts:
            return None
        done = max(r for r, start in enumerate(starts) if start == step) + 1
        if done == self.rounds:
            return final
        return {name: 1 - (1 - ratio) ** (done / self.rounds) for name, ratio in final.items()}


class Gradual:
    """Zhu & Gupta (2017): sparsity grows as final * (1 - (1 - t / T)^3) over the first
    `ramp` share of the fine-tuning steps, updated every `every` steps; the remaining steps
    fine-tune at the final ratios. T is ceil(`ramp` * steps), but at most the last step,
    so fine-tuning always ends at the final ratios, even with `ramp` 1 or a few steps."""

    def __init__(self, ramp: float = 0.75, every: int = 10) -> None:
        self.ramp = float(checked("schedule.ramp", ramp, float, within(0, 1, "(]")))
        self.every = checked("schedule.every", every, int, at_least(1))

    def _ramp_end(self, total_steps: int) -> int:
        """The step that prunes to the final ratios (T): the ramp's share of the
        `total_steps` fine-tuning steps, rounded up, at most the last one."""
        return min(math.ceil(self.ramp * total_steps), total_steps - 1)

    def ratios_at(self, step: int, total_steps: int, final: Ratios) -> Ratios | None:
        """The ratios to prune to before `step`, or None."""
        end = self._ramp_end(total_steps)
        if step == end:
            return final
        if step > end or step % self.every:
            return None
        share = 1 - (1 - step / end) ** 3
        return {name: ratio * share for name, ratio in final.items()}
