"""No trial repeats another's parameters and fine-tuning: a sibling or revisit equal to a
finished, running or waiting trial is not queued, and a trial about to run that equals one
is not run (the sampler draws again), except that of two equal trials that racing workers
queued, the first runs. A trial queued with fine-tuning epochs of its own (a
polish) trains its parameters differently, so it repeats only a trial queued with the same."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.record.attrs import FINETUNE_EPOCHS, REPEATS

# The trials whose parameters are taken: run, being run, or queued to run.
TAKEN = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """The parameters `trial` has or will have: those it was queued with, then those it
    sampled."""
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def _key(params: Mapping[str, Any]) -> frozenset:
    """`params` comparable as a set, floats rounded to 6 decimals (the sparsity grid's)."""
    return frozenset(
        (name, round(value, 6) if isinstance(value, float) else value)
        for name, value in params.items()
    )


def repeated_trial(
    study: optuna.Study,
    params: Mapping[str, Any],
    besides: int | None = None,
    finetune_epochs: int | None = None,
) -> FrozenTrial | None:
    """The finished, running or waiting trial of `study` with exactly `params` and queued
    with `finetune_epochs` of its own (None: with none); None when there is none. With
    `besides`, a trial number: other than that trial; and when that trial was queued
    with all of `params`, not an unfinished one numbered after it queued with them too,
    so that of two equal trials queued by racing workers the first runs. (A drawn
    trial's parameters show only once drawn, so drawn trials yield to any other.)"""
    key = _key(params)
    trials = study.get_trials(deepcopy=False, states=TAKEN)
    queued = {t.number for t in trials if _key(t.system_attrs.get("fixed_params", {})) == key}
    for trial in trials:
        if trial.number == besides or (
            besides in queued
            and trial.number in queued
            and trial.number > besides
            and trial.state != TrialState.COMPLETE
        ):
            continue
        if FINETUNE_EPOCHS.of(trial) == finetune_epochs and _key(trial_params(trial)) == key:
            return trial
    return None


def enqueue_new(study: optuna.Study, params: dict[str, Any], user_attrs: dict[str, Any]) -> None:
    """Queue a trial of `params` with `user_attrs` unless a finished, running or waiting
    trial has them already."""
    if repeated_trial(study, params) is None:
        study.enqueue_trial(params, user_attrs=user_attrs)


def refuse_repeat(trial: optuna.Trial) -> None:
    """End `trial` unrun (PRUNED, user attr `repeats`: the trial it repeats) when the
    parameters it sampled and its fine-tuning are an existing trial's."""
    own = FINETUNE_EPOCHS.of(trial)
    same = repeated_trial(trial.study, trial.params, besides=trial.number, finetune_epochs=own)
    if same is not None:
        REPEATS.set(trial, same.number)
        raise optuna.TrialPruned(f"its parameters repeat trial {same.number}'s")
