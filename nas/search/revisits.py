"""The end of a budget: instead of new architectures, whose dense training the little that
is left pays for poorly, the search tries the architectures of its front again at
sparsities the sampler picks, fine-tuning their cached dense weights only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.record.attrs import REVISIT_OF
from nas.record.measures import metric, objective_names
from nas.search.follow_up import FollowUp, QueuedTrial, SearchState, enqueue
from nas.search.last_share import LastShare


def architecture_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's parameters less its sparsity ones: those that choose the architecture."""
    return {name: value for name, value in params.items() if not name.startswith("sparsity.")}


def architecture_key(params: Mapping[str, Any]) -> str:
    """The architecture a trial's `params` choose, as a comparable string."""
    return repr(sorted(architecture_params(params).items()))


@dataclass(frozen=True)
class Revisits(LastShare, FollowUp):
    """Over the last `share` of a study's budget (of `max_epochs` when set, else of
    `n_trials`), queue one trial at a time of an architecture on the front whose dense
    weights are cached, with only its architecture parameters fixed: the sampler picks
    its sparsity. The architecture tried the fewest times goes first, the most accurate
    among equals. Revisits carry the user attr `revisit_of` (the front trial's number).
    `StudySettings` checks the share (`study.revisit_share`)."""

    def queue_after(self, study: optuna.Study, trial: FrozenTrial, state: SearchState) -> None:
        """Queue the next revisit when it is due."""
        if self.due(state.left, state.total):
            self.queue(study, state.candidates.holds_dense)

    def queue(self, study: optuna.Study, cached: Callable[[dict[str, Any]], bool]) -> None:
        """Queue the next revisit, unless a trial already waits or one with the same
        parameters is taken (see `nas.search.repeats`); `cached(params)` says
        whether the dense weights of the architecture a trial's `params` choose are kept."""
        enqueue(study, self._next(study, cached))

    @staticmethod
    def _next(
        study: optuna.Study, cached: Callable[[dict[str, Any]], bool]
    ) -> Iterator[QueuedTrial]:
        """The next revisit: of the cached front architecture tried the fewest times, the
        most accurate among equals."""
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        tries = Counter(architecture_key(trial.params) for trial in finished)
        names = objective_names(study)
        front = [trial for trial in study.best_trials if cached(trial.params)]
        if not front:
            return
        chosen = min(
            front,
            key=lambda trial: (
                tries[architecture_key(trial.params)],
                -metric(trial, "accuracy", names),
            ),
        )
        yield QueuedTrial(architecture_params(chosen.params), REVISIT_OF(chosen.number))
