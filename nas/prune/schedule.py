"""Pruning schedules: when during fine-tuning each layer is pruned, and how far.

A schedule maps a fine-tuning step (0 to `total_steps` - 1, over all fine-tuning epochs)
to the ratios to prune to before that step, or None to leave the masks as they are.
Every schedule ends at the sampled ratios and spends the same fine-tuning epochs, so
schedules compare at equal budget. A schedule whose pruning steps do not fit the
fine-tuning steps (`misfit`) is refused before anything trains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

from nas.checks import at_least, checked, within

Ratios = Mapping[str, float]
# The way out for a schedule that prunes while fine-tuning, given no fine-tuning at all.
NO_STEPS = "use more fine-tuning steps (train.finetune_epochs) or schedule=one_shot"


class Schedule(Protocol):
    """When, and to which ratios, fine-tuning prunes."""

    def ratios_at(self, step: int, total_steps: int, final: Ratios) -> Ratios | None:
        """The ratios to prune to before fine-tuning step `step`, or None."""

    def misfit(self, total_steps: int) -> str | None:
        """Why the schedule cannot act as set within `total_steps` fine-tuning steps,
        naming its settings; None when it can."""


class OneShot:
    """Prune to the final ratios before the first fine-tuning step."""

    def ratios_at(self, step: int, total_steps: int, final: Ratios) -> Ratios | None:
        """The ratios to prune to before `step`, or None."""
        return final if step == 0 else None

    def misfit(self, total_steps: int) -> str | None:
        """None: one pruning fits any fine-tuning, none included."""
        return None


ONE_SHOT = OneShot()


class Iterative:
    """`rounds` rounds of pruning and fine-tuning. Round r (1-based) starts by pruning
    each layer to 1 - (1 - final)^(r / rounds): the same share of the remaining weights
    goes each round, as in iterative magnitude pruning. The last round prunes to the final
    ratios themselves (the formula can miss them by a rounding error). Each round needs a
    fine-tuning step of its own: with more rounds than steps, some would prune at once
    (`misfit`)."""

    def __init__(self, rounds: int = 3) -> None:
        self.rounds = checked("schedule.rounds", rounds, int, at_least(1))

    def misfit(self, total_steps: int) -> str | None:
        """Why `rounds` rounds do not fit `total_steps` fine-tuning steps, or None."""
        if self.rounds <= total_steps:
            return None
        if not total_steps:
            return (
                f"schedule.rounds={self.rounds} rounds prune between fine-tuning steps, and "
                f"there are none; {NO_STEPS}"
            )
        return (
            f"schedule.rounds={self.rounds} rounds need a fine-tuning step each, so some "
            f"would prune at once; use schedule.rounds={total_steps} or fewer, or more "
            f"fine-tuning steps"
        )

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
    so fine-tuning always ends at the final ratios, even with `ramp` 1 or a few steps.

    The ramp must prune for the first time by its middle (`every` <= T / 2), which the
    cubic has reached seven eighths of the ratios by: a later first pruning cuts most of
    the ratios at once, late, with little fine-tuning after it. Ramp 1.0 and every 200 over
    110 steps cut all of them at step 109 of 110 (0.751 accuracy at 0.9 sparsity, where
    one-shot pruning got 0.913); `misfit` refuses such settings."""

    def __init__(self, ramp: float = 0.75, every: int = 10) -> None:
        self.ramp = float(checked("schedule.ramp", ramp, float, within(0, 1, "(]")))
        self.every = checked("schedule.every", every, int, at_least(1))

    def _ramp_end(self, total_steps: int) -> int:
        """The step that prunes to the final ratios (T): the ramp's share of the
        `total_steps` fine-tuning steps, rounded up, at most the last one."""
        return min(math.ceil(self.ramp * total_steps), total_steps - 1)

    def misfit(self, total_steps: int) -> str | None:
        """Why the ramp does not prune for the first time by its middle within
        `total_steps` fine-tuning steps, or None."""
        end = self._ramp_end(total_steps)
        middle = end // 2
        if self.every <= middle:
            return None
        if not total_steps:
            return (
                f"the ramp (schedule.ramp={self.ramp}, schedule.every={self.every}) prunes "
                f"between fine-tuning steps, and there are none; {NO_STEPS}"
            )
        first = min(self.every, end)
        cut = 1 - (1 - first / end) ** 3 if end else 1.0
        left = total_steps - first
        fewer = f"a schedule.every of at most {middle}, " if middle else ""
        return (
            f"schedule.every={self.every} puts the ramp's first pruning at step {first}, "
            f"past its middle (the ramp, schedule.ramp={self.ramp}, reaches the final "
            f"ratios at step {end}): it would cut {cut:.0%} of them there at once, with "
            f"{left} step{'s' * (left != 1)} left to fine-tune; use {fewer}more fine-tuning "
            f"steps or schedule=one_shot"
        )

    def ratios_at(self, step: int, total_steps: int, final: Ratios) -> Ratios | None:
        """The ratios to prune to before `step`, or None."""
        end = self._ramp_end(total_steps)
        if step == end:
            return final
        if step > end or step % self.every:
            return None
        share = 1 - (1 - step / end) ** 3
        return {name: ratio * share for name, ratio in final.items()}
