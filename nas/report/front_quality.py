"""How good a study's front is, on a scale shared by studies of one dense reference:
hypervolume of (error, params / reference params, FLOPs / reference FLOPs) from (1, 1, 1),
and the best accuracy within a share of the reference's parameters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from nas.optuna_internals import compute_hypervolume
from nas.record.measures import metric
from nas.trial.objectives import DEFAULT

REFERENCE_POINT = np.ones(3)


def normalised_objectives(
    trials: Sequence[FrozenTrial],
    reference_params: int,
    reference_flops: int,
    names: Sequence[str] = DEFAULT,
) -> np.ndarray:
    """One row per finished trial (of a study with objectives `names`): 1 - accuracy,
    nonzero params and FLOPs over the reference's, all to be minimised."""
    rows = [
        (
            1.0 - metric(t, "accuracy", names),
            metric(t, "nonzero_params", names) / reference_params,
            metric(t, "flops", names) / reference_flops,
        )
        for t in trials
        if t.state == TrialState.COMPLETE
    ]
    return np.array(rows, dtype=float).reshape(-1, 3)


def hypervolume(points: np.ndarray) -> float:
    """Volume dominated by `points` (rows of minimised objectives in [0, 1]) and bounded by
    the reference point (1, 1, 1); points not better than it in every objective add none."""
    inside = points[np.all(points < REFERENCE_POINT, axis=1)]
    if not len(inside):
        return 0.0
    return float(compute_hypervolume(inside, REFERENCE_POINT))


def hypervolume_history(points: np.ndarray, feasible: Sequence[bool]) -> list[float]:
    """The `hypervolume` of the feasible ones among the first 1, 2, ... rows of `points`:
    how the front grew, trial by trial."""
    history, front, volume = [], points[:0], 0.0
    for row, counted in zip(points, feasible, strict=True):
        if counted and not (front <= row).all(axis=1).any():  # a point the front lacks
            front = np.vstack([front, row])
            front = front[non_dominated(front)]
            volume = hypervolume(front)
        history.append(volume)
    return history


def best_accuracy_within(points: np.ndarray, params_share: float) -> float:
    """The best accuracy among `points` (rows as `normalised_objectives` gives) with at most
    `params_share` of the reference's nonzero parameters; 0.0 when none is that small."""
    small = points[points[:, 1] <= params_share]
    return float(1.0 - small[:, 0].min()) if len(small) else 0.0


def non_dominated(points: np.ndarray) -> list[int]:
    """Indices of the rows of `points` (minimised columns) that no other row dominates."""
    keep = []
    for i, row in enumerate(points):
        dominated = ((points <= row).all(axis=1) & (points < row).any(axis=1)).any()
        if not dominated:
            keep.append(i)
    return keep
