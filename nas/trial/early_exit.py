"""The search's own early stop: skip fine-tuning a candidate that cannot reach the front."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# (dense accuracy, accuracy right after pruning, nonzero params, FLOPs) -> skip fine-tuning?
SkipFinetune = Callable[[float, float, int, int], bool]

RULES = ("never", "dense", "pruned")


@dataclass(frozen=True)
class EarlyExit:
    """Skip fine-tuning when a finished trial already dominates the candidate's best hope.

    The hope is the candidate's accuracy plus `margin`: its dense accuracy (rule `dense`;
    fine-tuning rarely ends above it) or its accuracy right after pruning (rule
    `pruned`: bolder, since fine-tuning often recovers more than the margin). Its nonzero
    parameters and FLOPs are known exactly once it is pruned. Rule `never` never skips.
    `StudySettings` checks the settings (`study.early_exit`, `study.early_exit_margin`).
    """

    rule: str
    margin: float

    def judge(
        self, finished_values: Callable[[], Sequence[tuple[float, int, int]]]
    ) -> SkipFinetune | None:
        """The test a candidate meets against the finished trials' (accuracy, nonzero params,
        FLOPs), which `finished_values` reads only when the rule needs them; None when
        nothing can be skipped (rule never, or no finished trial)."""
        if self.rule == "never":
            return None
        finished = finished_values()
        if not finished:
            return None

        def skip(dense_accuracy: float, pruned_accuracy: float, nonzero: int, flops: int) -> bool:
            hope = (dense_accuracy if self.rule == "dense" else pruned_accuracy) + self.margin
            return any(a >= hope and p <= nonzero and f <= flops for a, p, f in finished)

        return skip


NO_EARLY_EXIT = EarlyExit("never", 0.0)
