"""Cross-validated fronts: `report cv_folds=K` runs every feasible front trial's candidate
on each of K train / validation splits of the study's training pool, so that the points
a lucky validation split put on the front stand out.

The pool is the study's training and validation samples together, shuffled once with the
data's `split_seed` and cut into K folds (`nas.data.splits.fold_splits`); run k trains on
every fold but fold k and validates on fold k. The test split is the study's own. Every
run goes through the study's pipeline with the study's seed (see `nas.studies.retrain`),
so the split is all that changes. A trial is flagged `outside` when its recorded
validation accuracy lies outside the range [min, max] of its folds' validation accuracies.

Runs are stored in the study as the user attr `cv.trial<N>`, keyed `<fold> of <K>`, so a
report with another K trains its own runs and a second one with the same K reuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from nas.checks import Bound, checked
from nas.errors import UsageError
from nas.studies.retrain import Retrainer, Variation, front_trials

# What `cv_folds` may be: 0 (off), or at least 2 folds.
FOLDS = Bound("0 (off) or a whole number >= 2", lambda value: value == 0 or value >= 2, whole=True)


def fold_count(value) -> int:
    """`cv_folds` checked: 0 (no cross-validation) or a whole number >= 2."""
    return checked("cv_folds", value, int, FOLDS)


def outside_verdict(recorded: float, folds: Sequence[float]) -> str:
    """`outside` when `recorded` lies below the smallest or above the largest of `folds`;
    else, or without folds, an empty string."""
    if folds and not min(folds) <= recorded <= max(folds):
        return "outside"
    return ""


@dataclass(frozen=True)
class Folds(Variation):
    """The `count` folds of the study's training pool; `outside_verdict` on the
    validation accuracy."""

    count: int

    name = "cv"
    column = "fold"
    plural = "folds"
    judged = "accuracy"
    recorded = "recorded (search split)"
    table_columns = (
        "trial", "nonzero_params", "accuracy", "val_mean", "val_std", "val_min", "val_max",
        "test_accuracy", "test_mean", "test_std", "verdict", "arch",
    )  # fmt: skip

    @classmethod
    def of(cls, retrainer: Retrainer, count: int) -> Folds:
        """`count` folds of `retrainer`'s pool; UsageError when it holds fewer samples."""
        if count > retrainer.pool_size:
            raise UsageError(
                f"cv_folds={count} is more than the {retrainer.pool_size} training and "
                f"validation samples"
            )
        return cls(count)

    @property
    def values(self) -> list[int]:
        return list(range(self.count))

    def key(self, value: int) -> str:
        return f"{value} of {self.count}"

    def setting(self, retrainer: Retrainer, value: int) -> tuple[Retrainer, int]:
        return retrainer.on_fold(self.count, value), retrainer.seed

    def verdict(self, recorded: float, runs: Sequence[float]) -> str:
        return outside_verdict(recorded, runs)

    def announcement(self, study: optuna.Study, retrainer: Retrainer) -> str:
        return (
            f"cross-validating the {len(front_trials(study))} front trials of study "
            f"{study.study_name!r} on {self.count} folds of its {retrainer.pool_size} "
            f"training and validation samples (seed {retrainer.seed}, split seed "
            f"{retrainer.split_seed}; the test split is the study's)"
        )

    @property
    def rule(self) -> str:
        return (
            "outside when the recorded validation accuracy lies outside the folds' "
            "[val_min, val_max]"
        )

    @property
    def title(self) -> str:
        return (
            f"Validation accuracy of the Pareto front: recorded, and on each of {self.count} folds"
        )
