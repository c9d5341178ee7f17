"""The constraints a search sets on each finished trial (Optuna's `set_constraint`;
positive means infeasible: off the front, and a failure to the sampler): the budgets
`study.max_nonzero_params` and `study.max_flops`, the accuracy floor
`study.min_accuracy_kept`, which keeps chance-level networks off the front, and
`same_as_polished`, which keeps a polish that gave its trial's values from being a second
point of the front for one network."""

from __future__ import annotations

from dataclasses import dataclass

import optuna
import torch

from nas.record.attrs import POLISH_OF
from nas.record.measures import objective_names
from nas.search.settings import StudySettings
from nas.trial.result import TrialResult

# Accuracies are whole validation images over their count: the floor's distance is taken
# at nine decimals, far below one image, so that float noise never decides feasibility.
DIGITS = 9


@dataclass(frozen=True)
class AccuracyFloor:
    """The validation accuracy a pruned network must reach: `chance` (what always
    answering the commonest validation class scores) plus `share` of its dense network's
    margin over chance, and at least `step` (one validation image) above chance, so that
    a network no better than that answer is never feasible, whatever its dense one did."""

    share: float
    chance: float
    step: float

    @classmethod
    def of(cls, share: float, labels: torch.Tensor) -> AccuracyFloor:
        """The floor keeping `share` of the margin, over the validation `labels`."""
        return cls(share, int(torch.bincount(labels).max()) / len(labels), 1 / len(labels))

    def __call__(self, dense_accuracy: float) -> float:
        """The floor of a pruned network whose dense network scored `dense_accuracy`."""
        return self.chance + max(self.share * (dense_accuracy - self.chance), self.step)


@dataclass(frozen=True)
class Constraints:
    """The user's limits on every trial: at most `max_nonzero_params` and `max_flops`
    (None: no limit), at least the accuracy `floor` (None: none); and on every polish,
    other values than its trial's."""

    max_nonzero_params: int | None
    max_flops: int | None
    floor: AccuracyFloor | None

    @classmethod
    def of(cls, opts: StudySettings, val_labels: torch.Tensor) -> Constraints:
        """The limits of the `study` settings, the floor over the validation labels."""
        share = opts.min_accuracy_kept
        floor = None if share is None else AccuracyFloor.of(share, val_labels)
        return cls(opts.max_nonzero_params, opts.max_flops, floor)

    def set(self, trial: optuna.Trial, result: TrialResult) -> None:
        """Store the distance of `trial`'s `result` to each limit as its constraint; a
        polish whose objective values are those of the trial it polished gets
        `same_as_polished` 1 (infeasible), any other polish 0."""
        for name, limit in (("nonzero_params", self.max_nonzero_params), ("flops", self.max_flops)):
            if limit is not None:
                trial.set_constraint(f"max_{name}", getattr(result, name) - limit)
        if self.floor is not None:
            below = self.floor(result.dense_accuracy) - result.accuracy
            trial.set_constraint("min_accuracy_kept", round(below, DIGITS))
        if POLISH_OF.on(trial):
            polished = trial.study.get_trials(deepcopy=False)[POLISH_OF.of(trial)]
            same = tuple(polished.values) == result.values(objective_names(trial.study))
            trial.set_constraint("same_as_polished", float(same))
