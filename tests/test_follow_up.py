"""Follow-ups: siblings, polishes and revisits queue their trials one way, in turn."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from nas.search.callbacks import QueueFollowUps, TrialBudget
from nas.search.follow_up import FollowUp, QueuedTrial, SearchState, enqueue
from nas.search.polish import Polish
from nas.search.revisits import Revisits
from nas.search.siblings import Siblings
from tests.front_trials import finished, four_trials, waiting


class FixedCosts:
    """Candidates that all cost `epochs` training epochs, their dense weights cached."""

    def __init__(self, epochs: float = 1.0) -> None:
        self.epochs = epochs

    def planned_epochs(self, params: dict, finetune_epochs: int | None = None) -> float:
        return self.epochs

    def holds_dense(self, params: dict) -> bool:
        return True


def fixed(trial: FrozenTrial) -> dict:
    return trial.system_attrs["fixed_params"]


def test_enqueue_fills_the_room_left_by_waiting_trials_in_order_without_repeats():
    study = four_trials()
    study.enqueue_trial({"arch.width": 64})
    repeat = QueuedTrial(dict(study.trials[0].params), {"sibling_of": 0})
    new = [QueuedTrial({"arch.width": 16, "sparsity.overall": s}, {}) for s in (0.6, 0.7)]
    enqueue(study, [repeat, *new], room=3)  # two places: the repeat takes one unqueued
    assert [fixed(t) for t in waiting(study)] == [{"arch.width": 64}, new[0].params]
    enqueue(study, [repeat], room=3, new_only=False)
    assert fixed(waiting(study)[-1]) == repeat.params


def test_enqueue_computes_nothing_while_a_trial_waits():
    study = four_trials()
    study.enqueue_trial({"arch.width": 64})

    def proposals():
        raise AssertionError("proposed with no room")
        yield

    enqueue(study, proposals())  # room 1, taken


def run_follow_ups(study: optuna.Study, budget: TrialBudget, costs: float = 1.0) -> None:
    """Call the follow-ups of a search (3 siblings, polishes and revisits over the last
    half) as the study's last trial finishes."""
    follow_ups = (Siblings(3, 0.5, "sparser", 0.02), Polish(0.5, 2, "accurate"), Revisits(0.5))
    QueueFollowUps(follow_ups, budget, FixedCosts(costs))(study, study.trials[-1])


def test_siblings_go_first_and_a_polish_or_revisit_waits_for_them():
    study = four_trials()
    study.add_trial(finished(16, 0.7, 0.99, 150, dense_cached=False))
    run_follow_ups(study, TrialBudget(n_trials=10))  # 5 left: polishing is due, 2 siblings fit
    assert [t.user_attrs for t in waiting(study)] == [
        {"sibling_of": 4, "density_factor": 0.5},
        {"sibling_of": 4, "density_factor": 0.25},
    ]


def test_a_polish_follows_a_polish_with_no_siblings():
    study = four_trials()
    study.add_trial(finished(32, 0.5, 0.95, 1000, dense_cached=False, polish_of=0))
    run_follow_ups(study, TrialBudget(n_trials=10))  # room for 2 siblings, but a polish
    [polish] = waiting(study)
    assert polish.user_attrs["polish_of"] == 1


def test_a_revisit_comes_when_no_polish_is_due_or_affordable():
    study = four_trials()
    study.add_trial(finished(32, 0.5, 0.95, 1000, train_epochs=5, polish_of=0))
    run_follow_ups(study, TrialBudget(n_trials=100, max_epochs=10), costs=6)  # 5 left
    [revisit] = waiting(study)
    assert revisit.user_attrs == {"revisit_of": 2}, "polishing trial 1 costs 6 epochs"


def test_under_an_epoch_limit_siblings_stop_short_of_the_polishes_share():
    study = four_trials()
    study.add_trial(finished(16, 0.7, 0.99, 150, dense_cached=False, train_epochs=4))
    run_follow_ups(study, TrialBudget(n_trials=100, max_epochs=20))  # 16 left, 10 kept
    assert len(waiting(study)) == 1, "one trial of 4 epochs fits before the last 10"
    study = four_trials()
    study.add_trial(finished(16, 0.7, 0.99, 150, dense_cached=False, train_epochs=4))
    run_follow_ups(study, TrialBudget(n_trials=100))
    assert len(waiting(study)) == 3, "no reserve without an epoch limit"


def test_under_an_epoch_limit_siblings_are_no_more_than_the_epochs_left_pay_for():
    study = four_trials()
    study.add_trial(finished(16, 0.7, 0.99, 150, dense_cached=False, train_epochs=4))
    siblings = (Siblings(3, 0.5, "sparser", 0.02),)  # no last share kept
    budget = TrialBudget(n_trials=100, max_epochs=7)  # 3 epochs left
    QueueFollowUps(siblings, budget, FixedCosts(1.5))(study, study.trials[-1])
    assert len(waiting(study)) == 2, "a third sibling of 1.5 epochs would be left WAITING"


class Recorded(FollowUp):
    """A follow-up that records the states it is shown, and keeps a last share."""

    def __init__(self, calls: list, reserve: int | None) -> None:
        self.calls = calls
        self.reserve = reserve

    def queue_after(self, study: optuna.Study, trial: FrozenTrial, state: SearchState) -> None:
        self.calls.append((self, state))

    def room_before(self, left: float, total: float, cost: float) -> int | None:
        return self.reserve


def test_follow_ups_are_called_in_turn_with_the_smallest_reserve_under_an_epoch_limit():
    study = four_trials()
    study.add_trial(finished(16, 0.7, 0.99, 150, train_epochs=4))
    calls = []
    follow_ups = [Recorded(calls, None), Recorded(calls, 3), Recorded(calls, 2)]
    QueueFollowUps(follow_ups, TrialBudget(10, max_epochs=20), FixedCosts(16))(
        study, study.trials[-1]
    )
    assert [follow_up for follow_up, _ in calls] == follow_ups
    state = calls[0][1]
    assert (state.left, state.total, state.to_start, state.before_reserve) == (16, 20, 5, 2)
    assert state.affords({}, 2) and not SearchState(15, 20, True, 5, 2, FixedCosts(16)).affords(
        {}, 2
    )
    calls.clear()
    QueueFollowUps(follow_ups, TrialBudget(10), FixedCosts(16))(study, study.trials[-1])
    state = calls[0][1]
    assert (state.left, state.total, state.before_reserve) == (5, 10, None)
    assert state.affords({}, 2), "with no epoch limit, any trial is affordable"


def test_nothing_is_queued_once_the_budget_has_no_trial_left_to_start():
    study = four_trials()  # the fourth fills n_trials: a polish and a revisit are due
    run_follow_ups(study, TrialBudget(n_trials=4))
    assert not waiting(study), "a queued trial the search cannot run is left WAITING"
    study = four_trials()
    study.add_trial(finished(16, 0.7, 0.99, 150, train_epochs=10))
    run_follow_ups(study, TrialBudget(n_trials=100, max_epochs=10))  # every epoch spent
    assert not waiting(study), "a revisit queued after the last epoch is left WAITING"
