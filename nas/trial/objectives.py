"""The study's objectives: which of a trial's measures Optuna optimises, and in which
direction. Every other measure is stored as a trial user attr."""

from __future__ import annotations

from dataclasses import dataclass

# Every measure that may be an objective, with its direction.
DIRECTIONS = {
    "accuracy": "maximize",
    "nonzero_params": "minimize",
    "flops": "minimize",
    "agreement": "maximize",
    "macro_f1": "maximize",
    "worst_class_accuracy": "maximize",
    "kl_divergence": "minimize",
    "ece": "minimize",
    "latency_ms": "minimize",
}
DEFAULT = ("accuracy", "nonzero_params", "flops")


@dataclass(frozen=True)
class Objectives:
    """The measures a study optimises, in order (`study.objectives`)."""

    names: tuple[str, ...] = DEFAULT

    def __post_init__(self) -> None:
        names = self.names
        if isinstance(names, str) or len(names) < 2:
            raise ValueError(
                f"study.objectives must list at least two measures (a front needs two), "
                f"got {names!r}"
            )
        unknown = [name for name in names if name not in DIRECTIONS]
        if unknown:
            raise ValueError(
                f"study.objectives: unknown {', '.join(map(repr, unknown))}; choose from "
                f"{', '.join(DIRECTIONS)}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"study.objectives lists a measure twice: {list(names)!r}")
        object.__setattr__(self, "names", tuple(names))

    @property
    def directions(self) -> tuple[str, ...]:
        """Optuna's direction of each objective."""
        return tuple(DIRECTIONS[name] for name in self.names)
