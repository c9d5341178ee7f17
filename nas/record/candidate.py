"""The candidate a trial's recorded parameters choose, sampled again from them."""

from __future__ import annotations

from typing import Any

from optuna.trial import FixedTrial

from nas.space import Candidate, SearchSpace


def candidate_of(space: SearchSpace, params: dict[str, Any], number: int = 0) -> Candidate:
    """The candidate `space` samples from trial parameters `params` (of trial `number`,
    for spaces that name what they build after it)."""
    return space.sample(FixedTrial(params, number=number))
