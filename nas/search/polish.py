"""The end of a budget, spent on the front's best: over its last share, the search runs
front trials again with longer fine-tuning, instead of new candidates. A trial fine-tuned
once at the weight-sharing rate stops short of what its candidate can reach; the front's
most accurate points hold most of its hypervolume, its smallest the most to gain."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas.checks import at_least, check_fields, one_of, setting, within
from nas.record.attrs import FINETUNE_EPOCHS, POLISH_OF
from nas.record.measures import metric, objective_names
from nas.search.epoch_sums import times_within
from nas.search.follow_up import FollowUp, QueuedTrial, SearchState, enqueue
from nas.search.last_share import LastShare
from nas.search.repeats import TAKEN


def _polished(study: optuna.Study) -> set[int]:
    """Numbers of the trials a finished, running or waiting polish is of."""
    return {
        POLISH_OF.of(trial)
        for trial in study.get_trials(deepcopy=False, states=TAKEN)
        if POLISH_OF.on(trial)
    }


@dataclass(frozen=True)
class Polish(LastShare, FollowUp):
    """Over the last `share` of a study's budget (of `max_epochs` when set, else of
    `n_trials`), queue one trial at a time that repeats a front trial's parameters and
    fine-tunes `epochs` epochs (the trial's user attr `finetune_epochs`): the feasible
    front trial not polished yet, that is not a polish itself, first by `order` (the most
    `accurate`, or the `smallest` in nonzero parameters). Polishes
    carry the user attr `polish_of` (the front trial's number); `room_before` keeps
    siblings out of the share. The config node `train.polish`, every value checked."""

    share: float = setting(within(0, 1, "[)"))
    epochs: int = setting(at_least(1))
    order: str = setting(one_of("accurate", "smallest"))

    def __post_init__(self) -> None:
        check_fields(self, "train.polish")

    def room_before(self, left: float, total: float, cost: float) -> int | None:
        """How many trials of `cost` epochs each fit in `left` of a budget of `total`
        before its last share, which polishes keep for themselves (None: no polishing,
        no reserve)."""
        if self.share == 0 or cost <= 0:
            return None
        return times_within(left - self.share * total, cost)

    def queue_after(self, study: optuna.Study, trial: FrozenTrial, state: SearchState) -> None:
        """Queue the next polish when it is due, if what is left of the budget pays for it."""
        if self.due(state.left, state.total):
            self.queue(study, state.affords)

    def queue(self, study: optuna.Study, affords: Callable[[dict[str, Any], int], bool]) -> None:
        """Queue the next polish, unless a trial already waits; `affords(params, epochs)`
        says whether what is left of the budget pays for a trial of `params` fine-tuning
        `epochs` epochs. A polish repeats its trial's parameters on purpose: it is queued
        without the repeat check of siblings and revisits."""
        enqueue(study, self._next(study, affords), new_only=False)

    def _next(
        self, study: optuna.Study, affords: Callable[[dict[str, Any], int], bool]
    ) -> Iterator[QueuedTrial]:
        """The next polish: of the first front trial by `order` not polished yet, that
        is not a polish itself, if the budget pays for it."""
        done = _polished(study)
        names = objective_names(study)
        front = [
            trial
            for trial in study.best_trials
            if not POLISH_OF.on(trial) and trial.number not in done
        ]
        if not front:
            return
        if self.order == "smallest":
            chosen = min(front, key=lambda trial: metric(trial, "nonzero_params", names))
        else:
            chosen = max(front, key=lambda trial: metric(trial, "accuracy", names))
        if affords(chosen.params, self.epochs):
            yield QueuedTrial(
                chosen.params, {**POLISH_OF(chosen.number), **FINETUNE_EPOCHS(self.epochs)}
            )
