"""A trial whose worker died before its first heartbeat is failed and queued again, as a
trial whose heartbeat went stale is; a trial just taken is left running."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from nas.search.retry import RetryTrial
from nas.search.storage import open_storage
from nas.search.study import fail_stale_trials

GRACE_S = 1


def test_a_running_trial_that_never_beat_is_failed_after_the_grace_period(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'db.sqlite'}", 1, GRACE_S, RetryTrial(3))
    study = optuna.create_study(storage=storage, study_name="s")
    study.enqueue_trial({"x": 0.5})
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # no heartbeat
    time.sleep(GRACE_S + 0.2)
    fresh = study.ask()  # taken just now: its first heartbeat may still come
    fail_stale_trials(study)
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[dead.number] == TrialState.FAIL
    assert states[fresh.number] == TrialState.RUNNING
    (retry,) = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert retry.params == {"x": 0.5} and retry.user_attrs["retry_of"] == dead.number


def test_a_retry_runs_what_the_dead_trial_was_queued_with():
    """A polish queued with its parameters and fine-tuning dies after suggesting one of
    them: its retry still takes the others as queued, and fine-tunes as the polish did."""
    study = optuna.create_study()
    study.enqueue_trial({"x": 0.5, "y": 0.2}, user_attrs={"polish_of": 3, "finetune_epochs": 5})
    dead = study.ask()
    dead.suggest_float("x", 0, 1)
    dead.set_user_attr("train_epochs", 1.5)  # measured while it ran: not carried over
    study.tell(dead, state=TrialState.FAIL)
    RetryTrial(3)(study, study.trials[dead.number])
    retry = study.ask()
    assert retry.suggest_float("x", 0, 1) == 0.5
    assert retry.suggest_float("y", 0, 1) == 0.2
    attrs = study.trials[retry.number].user_attrs
    assert attrs == {"polish_of": 3, "finetune_epochs": 5, "retry_of": dead.number}
