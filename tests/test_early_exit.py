"""The search's early exit skips fine-tuning only for candidates the front already beats."""

from __future__ import annotations

import pytest
import torch
from optuna.trial import FixedTrial

from nas.prune.methods import MagnitudePruning
from nas.search.settings import StudySettings
from nas.trial.early_exit import EarlyExit
from nas.trial.pipeline import TrialPipeline
from search_spaces.cnn import CNNSpace
from tests.conftest import conf_defaults
from tests.test_objective import PARAMS, SETTINGS

FINISHED = [(0.90, 1000, 5000)]


def test_the_dense_rule_skips_a_candidate_dominated_even_at_its_dense_accuracy_plus_margin():
    skip = EarlyExit("dense", margin=0.02).judge(lambda: FINISHED)
    assert skip(0.85, 0.30, 2000, 6000)  # 0.87 cannot reach 0.90 with more params and FLOPs
    assert not skip(0.89, 0.30, 2000, 6000)  # 0.91 could
    assert not skip(0.85, 0.30, 900, 6000)  # fewer params: not dominated


def test_a_finished_trial_with_more_flops_does_not_dominate():
    skip = EarlyExit("dense", margin=0.02).judge(lambda: FINISHED)
    assert skip(0.85, 0.30, 2000, 5000)  # equal FLOPs: still dominated
    assert not skip(0.85, 0.30, 2000, 4999)  # better accuracy and params, but more FLOPs


def test_the_pruned_rule_judges_the_accuracy_right_after_pruning():
    skip = EarlyExit("pruned", margin=0.05).judge(lambda: FINISHED)
    assert skip(0.99, 0.80, 2000, 6000)
    assert not skip(0.50, 0.86, 2000, 6000)


def test_never_and_an_empty_study_skip_nothing():
    assert EarlyExit("never", 0.02).judge(lambda: FINISHED) is None
    assert EarlyExit("dense", 0.02).judge(lambda: []) is None


@pytest.mark.parametrize(
    "rule, margin, message",
    [("sometimes", 0.02, "study.early_exit must be one of never, dense, pruned"),
     ("dense", 2.0, r"study.early_exit_margin must be a number in \[0, 1\]")],
)  # fmt: skip
def test_bad_settings_are_refused(rule, margin, message):
    with pytest.raises(ValueError, match=message):
        StudySettings(**conf_defaults("study", early_exit=rule, early_exit_margin=margin))


@pytest.mark.slow
def test_a_skipped_candidate_is_measured_pruned_without_fine_tuning(tiny_splits):
    space = CNNSpace()
    candidate = space.sample(FixedTrial(PARAMS))
    pipe = TrialPipeline(space, tiny_splits, MagnitudePruning(), SETTINGS, torch.device("cpu"))
    seen = []

    def skip(dense_accuracy, pruned_accuracy, nonzero, flops):
        seen.append((dense_accuracy, pruned_accuracy, nonzero, flops))
        return True

    skipped, _ = pipe.run(candidate, seed=2, skip_finetune=skip)
    kept, _ = pipe.run(candidate, seed=2, skip_finetune=lambda *measured: False)
    plain, _ = pipe.run(candidate, seed=2)

    assert skipped.finetune_skipped and skipped.train_epochs == SETTINGS.epochs
    assert seen == [(skipped.dense_accuracy, skipped.accuracy, *skipped.values()[1:])]
    assert skipped.nonzero_params == plain.nonzero_params
    assert not kept.finetune_skipped and kept.values() == plain.values()
    assert kept.train_epochs == SETTINGS.epochs + SETTINGS.finetune_epochs
