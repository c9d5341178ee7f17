"""How a polish's cost is judged against what is left of a study's epoch budget, at the
exact boundaries: a polish costing exactly what is left is queued and charged, so the
budget's tail is spent; one costing a little more is neither. The values are binary
fractions, exact in floating point."""

from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import TrialState

from nas.prune.methods import MagnitudePruning
from nas.search.callbacks import QueueFollowUps, TrialBudget
from nas.search.candidates import PipelineCandidates
from nas.search.objective import for_trial
from nas.search.polish import Polish
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings
from search_spaces.cnn import CNNSpace
from tests.conftest import conf_defaults
from tests.test_objective import PARAMS

MAX_EPOCHS, SHARE, POLISH_EPOCHS = 20, 0.25, 2  # polishing over the last 5 epochs
RECALIBRATION = 90 / (3 * 240)  # 90 of the 240 training images: 0.125 epochs
TRIAL = 1 + RECALIBRATION  # a sliced trial fine-tuning 1 epoch: 1.125
POLISH = POLISH_EPOCHS + RECALIBRATION  # 2.125


def sliced_pipeline(tiny_splits) -> TrialPipeline:
    """A weight-sharing search's pipeline: every candidate sliced (its dense weights from
    `dense_source`) and recalibrated on 90 images, then fine-tuned 1 epoch."""
    settings = TrainSettings(**conf_defaults("train", epochs=3, finetune_epochs=1))
    return TrialPipeline(
        CNNSpace(), tiny_splits, MagnitudePruning(), settings, torch.device("cpu"),
        dense_source=lambda candidate: {}, recalibration_images=90,
    )  # fmt: skip


def study_with(supernet_epochs: float, accuracies: list[float]) -> optuna.Study:
    """A study whose supernet cost `supernet_epochs` and which finished one sliced trial
    of PARAMS' architecture (each of its own sparsity) per accuracy."""
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.set_user_attr("supernet", {"train_epochs": supernet_epochs})
    for number, accuracy in enumerate(accuracies):
        study.enqueue_trial(PARAMS | {"sparsity.head": (0.05, 0.1, 0.15)[number]})
        trial = study.ask()
        CNNSpace().sample(trial)
        trial.set_user_attr("train_epochs", TRIAL)
        study.tell(trial, [accuracy, 1000 - number, 10000])
    return study


def queue_polishes(study: optuna.Study, pipeline: TrialPipeline, budget: TrialBudget) -> None:
    """Queue what a search queues after the study's last trial, polishes only."""
    candidates = PipelineCandidates(pipeline, seed=0)
    QueueFollowUps([Polish(SHARE, POLISH_EPOCHS, "accurate")], budget, candidates)(
        study, study.trials[-1]
    )


def test_a_polish_costing_exactly_what_is_left_is_queued_and_charged(tiny_splits):
    pipeline = sliced_pipeline(tiny_splits)
    assert PipelineCandidates(pipeline, 0).planned_epochs(PARAMS, POLISH_EPOCHS) == POLISH
    study = study_with(14.5, [0.7, 0.9, 0.8])  # 14.5 + 3 x 1.125 = 17.875: 2.125 left
    budget = TrialBudget(n_trials=100, max_epochs=MAX_EPOCHS)
    assert budget.left(study) == (POLISH, MAX_EPOCHS)
    queue_polishes(study, pipeline, budget)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [trial.user_attrs for trial in waiting] == [{"polish_of": 1, "finetune_epochs": 2}]
    polish = study.ask()  # the queued polish, charged as a search charges it before its run
    candidate = CNNSpace().sample(polish)
    budget.charge(polish, for_trial(pipeline, polish).planned_epochs(candidate, 0))
    assert polish.params == study.trials[1].params  # the most accurate front trial
    assert polish.user_attrs == {"polish_of": 1, "finetune_epochs": 2, "train_epochs": POLISH}
    study.tell(polish, [0.95, 999, 10000])
    assert budget.left(study) == (0, MAX_EPOCHS) and budget.exhausted(study)
    assert not budget.short(study), "the budget is spent to its last epoch"


def test_a_polish_costing_a_64th_of_an_epoch_more_than_is_left_is_not_queued_nor_charged(
    tiny_splits,
):
    pipeline = sliced_pipeline(tiny_splits)
    study = study_with(14.5 + 1 / 64, [0.7, 0.9, 0.8])
    budget = TrialBudget(n_trials=100, max_epochs=MAX_EPOCHS)
    assert budget.left(study)[0] == POLISH - 1 / 64
    queue_polishes(study, pipeline, budget)
    assert not study.get_trials(states=(TrialState.WAITING,))
    with pytest.raises(optuna.TrialPruned, match="2.125 training epochs would take the study"):
        budget.charge(study.ask(), POLISH)


def test_polishing_is_due_from_exactly_the_last_share_of_the_budget():
    polish = Polish(SHARE, POLISH_EPOCHS, "accurate")
    assert polish.due(left=5, total=MAX_EPOCHS)
    assert polish.due(left=0, total=MAX_EPOCHS)
    assert not polish.due(left=5 + 1 / 64, total=MAX_EPOCHS)


def test_the_trials_that_fit_before_the_last_share_are_counted_to_the_boundary():
    polish = Polish(SHARE, POLISH_EPOCHS, "accurate")  # the share holds 5 of the 20 epochs
    assert polish.room_before(left=8, total=MAX_EPOCHS, cost=1.5) == 2  # 3 epochs: 2 trials
    assert polish.room_before(left=8 - 1 / 64, total=MAX_EPOCHS, cost=1.5) == 1
    assert polish.room_before(left=5, total=MAX_EPOCHS, cost=1.5) == 0
    assert polish.room_before(left=4, total=MAX_EPOCHS, cost=1.5) == 0  # inside the share


def test_what_a_search_tells_its_follow_ups_is_exact_at_the_boundaries(tiny_splits):
    """After a trial of 1.125 epochs with 6.125 left: room for exactly one more such trial
    before the last 5 epochs, and a polish fine-tuning 6 epochs (6.125) is affordable."""
    pipeline = sliced_pipeline(tiny_splits)
    study = study_with(MAX_EPOCHS - 6.125 - 2 * TRIAL, [0.7, 0.9])
    budget = TrialBudget(n_trials=100, max_epochs=MAX_EPOCHS)
    candidates = PipelineCandidates(pipeline, 0)
    state = QueueFollowUps([Polish(SHARE, POLISH_EPOCHS, "accurate")], budget, candidates).state(
        study, study.trials[-1]
    )
    assert (state.left, state.total, state.by_epochs) == (6.125, MAX_EPOCHS, True)
    assert state.before_reserve == 1
    assert state.affords(PARAMS, finetune_epochs=6)
    assert not state.affords(PARAMS, finetune_epochs=7)


def test_epochs_that_are_not_binary_fractions_still_fill_the_budget_exactly():
    """Decimal epochs carry float noise (2.1 / 1.05 is 1.9999999999999996, 0.1 * 3 is
    0.30000000000000004): a trial that fills the budget exactly still fits."""
    polish = Polish(0.1, POLISH_EPOCHS, "accurate")  # the last 6 of 60 epochs
    assert polish.room_before(left=8.1, total=60, cost=1.05) == 2
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    for _ in range(3):
        trial = study.ask()
        trial.set_user_attr("train_epochs", 0.1)
        study.tell(trial, [0.5, 1, 1])
    budget = TrialBudget(n_trials=100, max_epochs=1)
    with pytest.raises(optuna.TrialPruned):  # a millionth of an epoch more is past it
        budget.charge(study.ask(), 0.7 + 1e-6)
    budget.charge(study.ask(), 0.7)  # 0.3 spent + 0.7 is the budget, not past it
