"""Follow-up trials: what a search queues after each finished trial instead of leaving
the next one to the sampler (siblings, polishes, revisits). Each is a `FollowUp`, told
where the search stands (`SearchState`); all queue their trials one way (`enqueue`)."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.epoch_sums import fits, times_within
from nas.search.repeats import enqueue_new


@dataclass(frozen=True)
class QueuedTrial:
    """A follow-up trial: the `params` it is queued with (the sampler draws the others)
    and the `user_attrs` that say what it follows up (`sibling_of`, `polish_of`, ...)."""

    params: dict[str, Any]
    user_attrs: dict[str, Any]


def enqueue(
    study: optuna.Study, trials: Iterable[QueuedTrial], room: int = 1, new_only: bool = True
) -> None:
    """Queue `trials` in order, as many as `room` less the trials already waiting leaves
    (none once one waits, by default); with `new_only`, none whose parameters a finished,
    running or waiting trial has (see `nas.search.repeats`). `trials` is read only as far
    as there is room: a generator computes nothing when a trial waits."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    for queued in islice(trials, max(room - len(waiting), 0)):
        if new_only:
            enqueue_new(study, queued.params, queued.user_attrs)
        else:
            study.enqueue_trial(queued.params, user_attrs=queued.user_attrs)


class Candidates(Protocol):
    """What a search's trial pipeline says of the candidate that trial parameters choose."""

    def planned_epochs(self, params: dict[str, Any], finetune_epochs: int | None = None) -> float:
        """The training epochs a trial of `params` costs, fine-tuning `finetune_epochs`
        (the pipeline's own when None)."""

    def holds_dense(self, params: dict[str, Any]) -> bool:
        """Whether the dense weights of the architecture `params` choose are cached."""


@dataclass(frozen=True)
class SearchState:
    """Where a search stands when one of its trials has finished: `left` of a budget of
    `total` (epochs under an epoch limit, `by_epochs`, else trials), the trials it has
    still `to_start`, how many trials costing what the finished one did fit
    `before_reserve`, the last share of the budget a follow-up keeps (None: no such
    limit), and what its `candidates` cost."""

    left: float
    total: float
    by_epochs: bool
    to_start: int
    before_reserve: int | None
    candidates: Candidates

    def affords(self, params: dict[str, Any], finetune_epochs: int) -> bool:
        """Whether what is left of the budget pays for a trial of `params` fine-tuning
        `finetune_epochs` epochs (always, without an epoch limit)."""
        return not self.by_epochs or (
            fits(self.candidates.planned_epochs(params, finetune_epochs), self.left)
        )

    def paid_for(self, params: dict[str, Any]) -> int | None:
        """How many trials of `params`, fine-tuning as the pipeline does, what is left of
        the budget pays for (None: any number, without an epoch limit)."""
        if not self.by_epochs:
            return None
        cost = self.candidates.planned_epochs(params)
        return times_within(self.left, cost) if cost > 0 else None


class FollowUp(abc.ABC):
    """Base class of what a search queues after each of its trials: a search calls
    `queue_after` of each of its follow-ups in turn, so that a later one sees the trials
    an earlier one queued waiting."""

    @abc.abstractmethod
    def queue_after(self, study: optuna.Study, trial: FrozenTrial, state: SearchState) -> None:
        """Queue (with `enqueue`) what is due after `trial` finished (in any state), the
        search standing at `state`."""

    def room_before(self, left: float, total: float, cost: float) -> int | None:
        """How many trials of `cost` epochs fit in `left` of a budget of `total` epochs
        before the last share that this follow-up keeps for itself (None: it keeps none)."""
        return None
