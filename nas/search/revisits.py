"""The end of a budget: instead of new architectures, whose dense training the little that
is left pays for poorly, the search tries the architectures of its front again at
sparsities the sampler picks, fine-tuning their cached dense weights only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.search.repeats import enqueue_new
from nas.trial.objectives import metric, objective_names


def architecture_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's parameters less its sparsity ones: those that choose the architecture."""
    return {name: value for name, value in params.items() if not name.startswith("sparsity.")}


def architecture_key(params: Mapping[str, Any]) -> str:
    """The architecture a trial's `params` choose, as a comparable string."""
    return repr(sorted(architecture_params(params).items()))


class Revisits:
    """Over the last `share` of a study's budget (of `max_epochs` when set, else of
    `n_trials`), queue one trial at a time of an architecture on the front whose dense
    weights are cached, with only its architecture parameters fixed: the sampler picks
    its sparsity. The architecture tried the fewest times goes first, the most accurate
    among equals. Revisits carry the user attr `revisit_of` (the front trial's number)."""

    def __init__(self, share: float) -> None:
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            raise ValueError(f"study.revisit_share must be in [0, 1), got {share!r}")
        self.share = share

    def due(self, left: int, total: int) -> bool:
        """Whether revisits are due with `left` of a budget of `total` (epochs or trials)."""
        return self.share > 0 and left <= self.share * total

    def queue(self, study: optuna.Study, cached: Callable[[dict[str, Any]], bool]) -> None:
        """Queue the next revisit, unless a trial already waits or one with the same
        parameters is taken (see `nas.search.repeats`); `cached(params)` says
        whether the dense weights of the architecture a trial's `params` choose are kept."""
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return
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
        enqueue_new(study, architecture_params(chosen.params), {"revisit_of": chosen.number})
