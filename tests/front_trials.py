"""A small study for the tests of what the end of a budget queues (revisits, polishes):
trials of one `arch.width` and one `sparsity.overall` each."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

DIRECTIONS = ["maximize", "minimize", "minimize"]
DISTRIBUTIONS = {
    "arch.width": CategoricalDistribution([16, 32, 64]),
    "sparsity.overall": FloatDistribution(0.5, 0.99),
}


def finished(width: int, sparsity: float, accuracy: float, params: int, **attrs):
    """A finished trial of `params` nonzero parameters and ten times as many FLOPs."""
    return optuna.trial.create_trial(
        params={"arch.width": width, "sparsity.overall": sparsity},
        distributions=DISTRIBUTIONS,
        values=[accuracy, params, params * 10],
        user_attrs=attrs,
    )


def four_trials() -> optuna.Study:
    """Width 32 tried twice, width 16 once (all three on the front, 0.95, 0.90 and 0.85
    accurate); width 64 dominated."""
    study = optuna.create_study(directions=DIRECTIONS)
    study.add_trial(finished(32, 0.5, 0.95, 1000))
    study.add_trial(finished(32, 0.9, 0.90, 200))
    study.add_trial(finished(16, 0.8, 0.85, 100))
    study.add_trial(finished(64, 0.5, 0.80, 5000))
    return study


def waiting(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's queued trials."""
    return study.get_trials(states=(TrialState.WAITING,))
