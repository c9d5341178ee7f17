"""Optuna callbacks of a search: the shared trial budget, the stops after repeated
failures or repeated draws, the progress bar with one log line per trial, and the
follow-up trials queued after each one."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.progress import progress
from nas.record.attrs import FAIL_REASON, NOT_RUN, REPEATS, SUPERNET, TRAIN_EPOCHS
from nas.record.measures import metric, objective_names
from nas.search.epoch_sums import epoch_sum, fits
from nas.search.follow_up import Candidates, FollowUp, SearchState
from nas.trial.objectives import DEFAULT

log = logging.getLogger(__name__)


def supernet_epochs(study: optuna.Study) -> float:
    """The training epochs the study's supernet has cost (0 without one)."""
    return SUPERNET.of(study).get("train_epochs", 0)


class TrialBudget:
    """`n_trials` finished (COMPLETE) trials in total, and at most `max_epochs` training
    epochs (the `train_epochs` user attrs of finished and running trials summed), shared
    by every worker of a study.

    As a callback it stops this worker once finished plus running trials fill either
    budget; `admits` lets a trial that was started in the same instant as others run only
    if the trials numbered before it leave room, so workers never finish more than
    `n_trials`; `charge` refuses a trial whose epochs would take the study past
    `max_epochs`.
    """

    def __init__(self, n_trials: int, max_epochs: int | None = None) -> None:
        self.n_trials = n_trials
        self.max_epochs = max_epochs

    def remaining(self, study: optuna.Study) -> int:
        """Trials still to start: the budget less finished and running trials."""
        taken = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        return self.n_trials - len(taken)

    def left(self, study: optuna.Study) -> tuple[int, int]:
        """What is left of the budget and its size: epochs when `max_epochs` is set,
        trials otherwise."""
        if self.max_epochs is None:
            return self.remaining(study), self.n_trials
        return self.max_epochs - self.epochs_spent(study), self.max_epochs

    @staticmethod
    def epochs_spent(study: optuna.Study, before: int | None = None) -> float:
        """Training epochs of the study's supernet, of the finished trials and of the
        running ones (those numbered before `before`, when given) that have said how many
        they train."""
        return epoch_sum(
            [supernet_epochs(study)]
            + [
                TRAIN_EPOCHS.of(trial)
                for trial in study.get_trials(deepcopy=False)
                if trial.state == TrialState.COMPLETE
                or (trial.state == TrialState.RUNNING and (before is None or trial.number < before))
            ]
        )

    def short(self, study: optuna.Study) -> bool:
        """Whether the finished trials leave the budget unspent: fewer than `n_trials` of
        them, having trained (with the study's supernet) fewer than `max_epochs` epochs."""
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        epochs = epoch_sum([supernet_epochs(study)] + [TRAIN_EPOCHS.of(t) for t in finished])
        return len(finished) < self.n_trials and (
            self.max_epochs is None or epochs < self.max_epochs
        )

    def exhausted(self, study: optuna.Study) -> bool:
        """Whether either budget is spent: no trial left to start, or no epoch left."""
        out_of_epochs = self.max_epochs is not None and (
            self.epochs_spent(study) >= self.max_epochs
        )
        return self.remaining(study) <= 0 or out_of_epochs

    def admits(self, trial: optuna.Trial) -> bool:
        """Whether `trial` (already RUNNING) fits in the budget, given the trials before it."""
        taken = sum(
            1
            for other in trial.study.get_trials(deepcopy=False)
            if other.state == TrialState.COMPLETE
            or (other.state == TrialState.RUNNING and other.number < trial.number)
        )
        if self.max_epochs is not None:
            if self.epochs_spent(trial.study, before=trial.number) >= self.max_epochs:
                return False
        return taken < self.n_trials

    def charge(self, trial: optuna.Trial, epochs: float) -> None:
        """Record that `trial` trains `epochs` epochs, so that other workers count them; raise
        `optuna.TrialPruned` instead when they would take the study past `max_epochs`."""
        if self.max_epochs is not None:
            spent = self.epochs_spent(trial.study, before=trial.number)
            if not fits(spent + epochs, self.max_epochs):
                refuse(
                    trial,
                    f"its {epochs:g} training epochs would take the study past study.max_epochs="
                    f"{self.max_epochs} ({spent:g} spent)",
                )
        TRAIN_EPOCHS.set(trial, epochs)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.exhausted(study) or NOT_RUN.on(trial):  # refused: the budget is full
            study.stop()


def refuse(trial: optuna.Trial, reason: str) -> None:
    """End `trial` unrun (PRUNED), with `reason` stored as its `not_run` user attr."""
    NOT_RUN.set(trial, reason)
    raise optuna.TrialPruned(reason)


class FailureStreak:
    """Stop the search after `limit` trials in a row failed, or after one trial that a
    disk refused (`refused`); `message` names the reason."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reasons: list[str] = []
        self.disk_full: str | None = None  # why a disk refused a trial's writes

    @property
    def tripped(self) -> bool:
        """Whether the last `limit` trials all failed, or a disk refused one."""
        return len(self.reasons) >= self.limit or self.disk_full is not None

    def refused(self, trial: optuna.Trial, reason: str) -> None:
        """Trial `trial` failed because a disk takes no more writes: every later trial
        would too, so the search stops after it."""
        self.disk_full = (
            f"stopped: trial {trial.number} could not write its files ({reason}); free the "
            f"disk (or point study.artifacts elsewhere) and run the same command again"
        )

    def message(self) -> str:
        """Why the search stopped: the disk that refused a trial, or else the most common
        kind of error, with its latest message.

        Reasons are grouped by error type, since messages differ in details such as the
        free memory an out-of-memory error reports."""
        if self.disk_full is not None:
            return self.disk_full
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
            self.reasons.append(FAIL_REASON.of(trial) or "unknown reason")
            if self.tripped:
                study.stop()


class RepeatStreak:
    """Stop the search after `limit` draws in a row repeated existing trials' parameters
    (see `nas.search.repeats`): the sampler finds nothing new; `message` says so."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    @property
    def tripped(self) -> bool:
        """Whether the last `limit` trials were all repeated draws."""
        return self.count >= self.limit

    def message(self) -> str:
        """Why the search stopped."""
        return (
            f"stopped after {self.count} draws in a row repeated existing trials' parameters: "
            f"the sampler finds nothing new in the space (widen it, or lower study.n_trials)"
        )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.count = self.count + 1 if REPEATS.on(trial) else 0
        if self.tripped:
            study.stop()


class QueueFollowUps:
    """Optuna callback: after each trial, `follow_ups` queue what is due, in turn (see
    `FollowUp`), told what is left of `budget` and what its `candidates` cost; nothing
    once the budget is spent, so that no queued trial outlives the search."""

    def __init__(
        self, follow_ups: Sequence[FollowUp], budget: TrialBudget, candidates: Candidates
    ) -> None:
        self.follow_ups = follow_ups
        self.budget = budget
        self.candidates = candidates

    def state(self, study: optuna.Study, trial: FrozenTrial) -> SearchState:
        """Where the search stands as `trial` finishes; under an epoch limit, the trials
        costing what `trial` did that fit before the last share a follow-up keeps."""
        left, total = self.budget.left(study)
        by_epochs = self.budget.max_epochs is not None
        cost = TRAIN_EPOCHS.of(trial)
        rooms = [f.room_before(left, total, cost) for f in self.follow_ups] if by_epochs else []
        before_reserve = min((room for room in rooms if room is not None), default=None)
        to_start = self.budget.remaining(study)
        return SearchState(left, total, by_epochs, to_start, before_reserve, self.candidates)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.budget.exhausted(study):
            return
        state = self.state(study, trial)
        for follow_up in self.follow_ups:
            follow_up.queue_after(study, trial, state)


class SearchProgress:
    """Optuna callback: a progress bar over finished trials and one log line per trial."""

    def __init__(self, total: int, finished: int) -> None:
        self.bar = progress(total=total, initial=finished, unit="trial", desc="search")
        self.waiting_for = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.waiting_for = 0
        if trial.state == TrialState.FAIL:
            log.warning("trial %d failed: %s", trial.number, FAIL_REASON.of(trial) or "?")
            return
        if trial.state == TrialState.PRUNED:
            log.info("trial %d not run: %s", trial.number, _not_run(trial))
            return
        finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        self.bar.update(finished - self.bar.n)  # other workers' trials count too
        self.bar.set_postfix(front=len(study.best_trials))
        names = objective_names(study)
        accuracy, nonzero, flops = (metric(trial, name, names) for name in DEFAULT)
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

    def wait(self, study: optuna.Study, running: int) -> None:
        """Show that the search waits for `running` trials of other processes."""
        finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        self.bar.update(finished - self.bar.n)
        what = f"{running} running trial{'s' if running > 1 else ''}"
        self.bar.set_postfix_str(f"waiting for {what}")
        if running != self.waiting_for:
            log.info(
                "waiting for %s: in other workers, or in a process that died (retried once "
                "silent for study.grace_period)",
                what,
            )
        self.waiting_for = running

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()


def _not_run(trial: FrozenTrial) -> str:
    """Why `trial` ended unrun: the budget refused it, or it repeated an earlier trial."""
    if REPEATS.on(trial):
        return f"its parameters repeat trial {REPEATS.of(trial)}'s; drawing again"
    return NOT_RUN.of(trial) or "?"
