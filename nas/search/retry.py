"""Retrying a trial that died: the same parameters again, under a new trial number.

A trial whose process was killed (its heartbeat went stale) or interrupted is queued
again as a WAITING trial with the same parameters: those it had drawn, and those it was
queued with but had not drawn yet; and with the user attrs it was queued with (a polish's
fine-tuning, what a sibling follows up). The retry carries Optuna's own system attrs
(`failed_trial`, `retry_history`, as `RetryHeartbeatStaleTrialCallback` writes them) and a
`retry_of` user attr that the dashboard shows.
"""

from __future__ import annotations

import logging

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.record.attrs import QUEUED_WITH, RETRY_OF

log = logging.getLogger(__name__)


class RetryTrial:
    """Queue a dead trial again, at most `max_retry` times per original trial.

    Serves as the storage's `heartbeat_stale_trial_callback` and is called directly for
    a trial stopped by Ctrl-C.
    """

    def __init__(self, max_retry: int) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        original = history[0]
        if len(history) > self.max_retry:
            log.warning(
                "trial %d (parameters of trial %d) died %d times; not retrying it again",
                trial.number,
                original,
                len(history),
            )
            return
        queued = {a.key: trial.user_attrs[a.key] for a in QUEUED_WITH if a.key in trial.user_attrs}
        fixed = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
        study.add_trial(
            optuna.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={**queued, **RETRY_OF(trial.number)},
                system_attrs={
                    "failed_trial": original,
                    "retry_history": history,
                    "fixed_params": fixed,
                },
            )
        )
        log.info("trial %d did not finish; its parameters are queued again", trial.number)
