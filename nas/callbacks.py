"""Optuna callbacks of a search: the shared trial budget, the stop after repeated
failures, and the progress bar with one log line per trial."""

from __future__ import annotations

import logging
from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

log = logging.getLogger(__name__)


class TrialBudget:
    """`n_trials` finished (COMPLETE) trials in total, shared by every worker of a study.

    As a callback it stops this worker once finished plus running trials fill the budget;
    `admits` lets a trial that was started in the same instant as others run only if the
    trials numbered before it leave room, so workers never finish more than `n_trials`.
    """

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def remaining(self, study: optuna.Study) -> int:
        """Trials still to start: the budget less finished and running trials."""
        taken = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        return self.n_trials - len(taken)

    def admits(self, trial: optuna.Trial) -> bool:
        """Whether `trial` (already RUNNING) fits in the budget, given the trials before it."""
        taken = sum(
            1
            for other in trial.study.get_trials(deepcopy=False)
            if other.state == TrialState.COMPLETE
            or (other.state == TrialState.RUNNING and other.number < trial.number)
        )
        return taken < self.n_trials

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.remaining(study) <= 0:
            study.stop()


class FailureStreak:
    """Stop the search after `limit` trials in a row failed; `message` names the reason."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reasons: list[str] = []

    @property
    def tripped(self) -> bool:
        """Whether the last `limit` trials all failed."""
        return len(self.reasons) >= self.limit

    def message(self) -> str:
        """Why the search stopped: the most common kind of error, with its latest message.

        Reasons are grouped by error type, since messages differ in details such as the
        free memory an out-of-memory error reports."""
        kinds = [reason.partition(":")[0] for reason in self.reasons]
        kind, count = Counter(kinds).most_common(1)[0]
        latest = next(r for r in reversed(self.reasons) if r.partition(":")[0] == kind)
        return (
            f"stopped after {len(self.reasons)} failed trials in a row "
            f"(study.max_consecutive_failures); {count} of them failed with {latest}"
        )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            self.reasons.clear()
        elif trial.state == TrialState.FAIL:
            self.reasons.append(trial.user_attrs.get("fail_reason", "unknown reason"))
            if self.tripped:
                study.stop()


class SearchProgress:
    """Optuna callback: a progress bar over finished trials and one log line per trial."""

    def __init__(self, total: int, finished: int) -> None:
        self.bar = tqdm(
            total=total, initial=finished, unit="trial", desc="search", dynamic_ncols=True
        )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            log.warning(
                "trial %d failed: %s", trial.number, trial.user_attrs.get("fail_reason", "?")
            )
            return
        if trial.state == TrialState.PRUNED:
            log.info(
                "trial %d not run: the other workers' trials fill study.n_trials", trial.number
            )
            return
        finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        self.bar.update(finished - self.bar.n)  # other workers' trials count too
        self.bar.set_postfix(front=len(study.best_trials))
        accuracy, nonzero, flops = trial.values
        attrs = trial.user_attrs
        log.info(
            "trial %d: accuracy %.4f (test %.4f), nonzero %s of %s, flops %s, %.1fs, %s",
            trial.number,
            accuracy,
            attrs["test_accuracy"],
            f"{int(nonzero):,}",
            f"{attrs['dense_params']:,}",
            f"{int(flops):,}",
            attrs["seconds"],
            attrs["arch"],
        )

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()
