"""The chaos benchmark's pure parts: its invariant checks on hand-made trials, its kill
plan, and the storage timer's bookkeeping (no search is run)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def chaos():
    return load("chaos")


@pytest.fixture(scope="module")
def timer():
    return load("storage_timer")


DISTRIBUTIONS = {"x": FloatDistribution(0, 1), "n": IntDistribution(1, 3)}


def trial(number, state=TrialState.COMPLETE, values=(0.5, 10.0), user_attrs=None, **params):
    """A frozen trial numbered `number` with `params` (x and n by default)."""
    params = params or {"x": 0.5, "n": 1}
    made = create_trial(
        state=state,
        values=list(values) if state == TrialState.COMPLETE else None,
        params=params,
        distributions={name: DISTRIBUTIONS[name] for name in params},
        user_attrs=user_attrs or {},
    )
    made.number = number
    return made


def test_counts_find_gaps_repeats_running_trials_and_a_missed_budget(chaos):
    trials = [trial(0, x=0.1, n=1), trial(2, x=0.2, n=1), trial(2, TrialState.RUNNING)]
    problems = chaos.count_problems(trials, n_trials=3)
    assert problems == [
        "trial numbers not contiguous: repeated [2], missing [1]",
        "2 COMPLETE trials, not n_trials=3",
        "trials left RUNNING: [2]",
    ]
    assert chaos.count_problems([trial(0, x=0.1, n=1), trial(1, x=0.2, n=1)], 2) == []


def test_a_polish_repeats_parameters_with_its_own_finetuning_and_is_no_repeat(chaos):
    polish = trial(1, user_attrs={"finetune_epochs": 5, "polish_of": 0})
    assert chaos.repeated_params([trial(0), polish]) == []
    again = trial(2, x=0.5 + 1e-9, n=1)  # the same grid value, as floats come back
    assert chaos.repeated_params([trial(0), polish, again]) == [[0, 2]]
    assert chaos.repeated_params([trial(0), trial(2, TrialState.PRUNED)]) == []


def test_a_failed_trial_needs_a_retry_until_it_died_max_retry_times(chaos):
    dead = trial(0, TrialState.FAIL)
    assert chaos.unretried([dead], max_retry=3) == [0]
    retry = trial(1, TrialState.WAITING, user_attrs={"retry_of": 0})
    assert chaos.unretried([dead, retry], max_retry=3) == []
    worn = trial(5, TrialState.FAIL)
    worn._system_attrs = {"retry_history": [0, 2, 4]}  # its fourth death
    assert chaos.unretried([worn], max_retry=3) == []


def test_a_retry_must_keep_the_queued_parameters_and_fine_tuning_of_its_dead_trial(chaos):
    dead = trial(3, TrialState.FAIL, user_attrs={"finetune_epochs": 5}, n=1)
    dead._system_attrs = {"fixed_params": {"n": 1, "x": 0.98}}  # killed before suggesting x
    retry = trial(7, TrialState.PRUNED, user_attrs={"retry_of": 3}, n=1, x=0.93)
    assert chaos.retry_problems([dead, retry]) == [
        "retry 7 (PRUNED) of trial 3: x 0.98 -> 0.93, finetune_epochs 5 -> None"
    ]
    faithful = trial(7, user_attrs={"retry_of": 3, "finetune_epochs": 5}, n=1, x=0.98)
    assert chaos.retry_problems([dead, faithful]) == []


def test_compare_finds_changed_values_and_fronts_over_the_common_trials(chaos):
    signs = [1, -1]  # accuracy up, size down
    ours = [trial(0, values=(0.9, 10), x=0.1), trial(1, values=(0.8, 5), x=0.2)]
    theirs = [trial(4, values=(0.8, 5), x=0.2), trial(6, values=(0.9, 10), x=0.1)]
    same = chaos.compare(ours, theirs + [trial(7, values=(1, 1), x=0.3)], signs)
    assert (same.common, same.differing, same.front_same, same.front_size) == (2, [], True, 2)
    changed = [trial(4, values=(0.8, 5), x=0.2), trial(6, values=(0.95, 5), x=0.1)]
    result = chaos.compare(ours, changed, signs)
    assert result.differing == [(0, 6, [0.9, 10.0], [0.95, 5.0])]
    assert not result.front_same  # theirs: trial 6 alone dominates


def test_the_supernet_check_allows_the_rounding_of_each_resume_and_nothing_more(chaos):
    facts = {"record": {"epochs_done": 10, "train_epochs": 35.333334}, "claims": 3}
    facts["claim_studies_left"] = []
    verdict = chaos.supernet_verdict(facts, {"train_epochs": 35.333333}, epochs=10)
    assert verdict.startswith("ok (") and "2 resume(s)" in verdict
    twice = {**facts, "record": {"epochs_done": 10, "train_epochs": 38.8}}
    assert "!= undisturbed" in chaos.supernet_verdict(twice, {"train_epochs": 35.333333}, 10)
    short = {**facts, "record": {"epochs_done": 9, "train_epochs": 35.333333}}
    assert "epochs_done 9 != 10" in chaos.supernet_verdict(short, {"train_epochs": 35.333333}, 10)


def test_the_kill_plan_is_drawn_from_the_seed(chaos):
    plan = chaos.kill_plan(seed=3, kills=10, trainer_kills=2, n_trials=80, jitter=2.0)
    assert plan == chaos.kill_plan(seed=3, kills=10, trainer_kills=2, n_trials=80, jitter=2.0)
    assert plan != chaos.kill_plan(seed=4, kills=10, trainer_kills=2, n_trials=80, jitter=2.0)
    assert [kill.trainer for kill in plan] == [True, True] + [False] * 8
    counts = [kill.after for kill in plan[2:]]
    assert counts == sorted(counts) and 1 <= counts[0] and counts[-1] <= 72  # 90 % of 80
    assert all(0.0 <= kill.delay <= 2.0 for kill in plan)


def test_storage_calls_are_sorted_by_what_they_do_for_a_search(timer):
    running, complete = TrialState.RUNNING, TrialState.COMPLETE
    assert timer.category("create_new_trial", (1,), {}) == "claim"  # ask
    assert timer.category("create_new_trial", (1, object()), {}) == "queue"  # enqueue, retry
    assert timer.category("set_trial_state_values", (1, running), {}) == "claim"  # queue pop
    assert timer.category("set_trial_state_values", (1,), {"state": complete}) == "tell"
    assert timer.category("record_heartbeat", (1,), {}) == "heartbeat"
    assert timer.category("set_trial_user_attr", (1, "k", 2), {}) == "attrs"
    assert timer.category("get_all_trials", (1,), {}) == "read"


def test_the_timer_counts_outermost_calls_only_and_dumps_them(timer, tmp_path):
    totals = timer.Totals()

    class Storage:
        def get_trial(self, trial_id):
            return trial_id

        def get_all_trials(self, study_id):
            return [self.get_trial(i) for i in range(3)]  # nested: counted in get_all_trials

    Storage.get_trial = totals.timed("get_trial", Storage.get_trial)
    Storage.get_all_trials = totals.timed("get_all_trials", Storage.get_all_trials)
    assert Storage().get_all_trials(0) == [0, 1, 2]
    Storage().get_trial(5)
    totals.dump(tmp_path)
    dumped = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert {key: count for key, (count, _, _) in dumped["calls"].items()} == {
        "main/read/get_all_trials": 1,
        "main/read/get_trial": 1,
    }
    assert dumped["first_call"] is not None


def test_workers_get_the_storage_password_by_environment_not_on_their_command_line(chaos):
    bare, env = chaos.without_password("postgresql+psycopg2://nas:s3cret@127.0.0.1:5432/nas")
    assert bare == "postgresql+psycopg2://nas@127.0.0.1:5432/nas"
    assert env == {"NAS_STORAGE_PASSWORD": "s3cret"}
    assert chaos.without_password("sqlite:////tmp/nas.db") == ("sqlite:////tmp/nas.db", {})
