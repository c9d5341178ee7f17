"""A finished trial's measures read back, whichever of them its study optimises."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial

from nas.trial.objectives import DEFAULT


def objective_names(study: optuna.Study) -> tuple[str, ...]:
    """The names of `study`'s objectives (the default ones for a study without names)."""
    return tuple(study.metric_names or DEFAULT)


_REQUIRED = object()


def metric(trial: FrozenTrial, name: str, names: Sequence[str], default=_REQUIRED) -> float:
    """Measure `name` of a finished `trial` of a study with objectives `names`: its
    objective value if it is one, else its user attr, else `default` (KeyError if none
    is given)."""
    if name in names:
        return trial.values[list(names).index(name)]
    if default is _REQUIRED or name in trial.user_attrs:
        return trial.user_attrs[name]
    return default
