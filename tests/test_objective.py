from __future__ import annotations

import dataclasses

import optuna
import pytest
import torch
from optuna.trial import FixedTrial

from nas.prune.counting import dense_params
from nas.prune.methods import MagnitudePruning
from nas.search.objective import trial_objective
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings, accuracy
from search_spaces.cnn import CNNSpace
from tests.conftest import TRIAL_USER_ATTRS, conf_defaults

SETTINGS = TrainSettings(**conf_defaults("train", epochs=1, finetune_epochs=1, batch_size=32))
PARAMS = {
    "arch.blocks": 2,
    "arch.block1.channels": 8,
    "arch.block2.channels": 8,
    "arch.kernel_size": 3,
    "arch.hidden": 32,
    "sparsity.block1.conv": 0.25,
    "sparsity.block2.conv": 0.5,
    "sparsity.hidden": 0.9,
    "sparsity.head": 0.35,
}


def pipeline(tiny_splits) -> TrialPipeline:
    return TrialPipeline(CNNSpace(), tiny_splits, MagnitudePruning(), SETTINGS, torch.device("cpu"))


def run(tiny_splits, params=PARAMS, seed=0):
    space = CNNSpace()
    candidate = space.sample(FixedTrial(params))
    return space, candidate, pipeline(tiny_splits).run(candidate, seed)[0]


def test_a_candidate_is_trained_pruned_to_its_ratios_and_measured(tiny_splits):
    space, candidate, result = run(tiny_splits)
    model = space.build(candidate, tiny_splits.in_shape, tiny_splits.n_classes)
    assert result.dense_params == dense_params(model)
    for name, target in candidate.sparsity.items():
        numel = model.get_submodule(name).weight.numel()
        assert abs(result.sparsity_achieved[name] - target) * numel <= 0.5 + 1e-9
    assert result.nonzero_params < result.dense_params
    assert result.flops < result.dense_flops
    assert result.train_epochs == 2
    assert 0.25 < result.dense_accuracy <= 1.0  # above chance for 4 classes
    assert result.values() == (result.accuracy, result.nonzero_params, result.flops)
    assert set(result.user_attrs()) == TRIAL_USER_ATTRS


@pytest.mark.slow
def test_same_seed_gives_the_same_result(tiny_splits):
    first, second = run(tiny_splits, seed=3)[2], run(tiny_splits, seed=3)[2]
    assert first.values() == second.values()
    assert first.test_accuracy == second.test_accuracy


def test_test_accuracy_is_measured_on_the_test_split_and_accuracy_on_validation(tiny_splits):
    shifted = (tiny_splits.val_y + 1) % tiny_splits.n_classes  # the validation images, mislabelled
    splits = dataclasses.replace(tiny_splits, test_x=tiny_splits.val_x, test_y=shifted)
    candidate = CNNSpace().sample(FixedTrial(PARAMS))
    result, model = pipeline(splits).run(candidate, seed=0)
    assert result.accuracy == accuracy(model, splits.val_x, splits.val_y)
    assert result.test_accuracy == accuracy(model, splits.val_x, shifted)
    assert result.test_accuracy != result.accuracy


@pytest.mark.slow
def test_objective_records_values_and_user_attrs_in_a_study(tiny_splits):
    objective = trial_objective(pipeline(tiny_splits), seed=0)
    study = optuna.create_study(
        directions=["maximize", "minimize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(objective, n_trials=2)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 2
    for trial in trials:
        assert trial.values[1] <= trial.user_attrs["dense_params"]
        assert trial.values[2] <= trial.user_attrs["dense_flops"]
        assert trial.user_attrs["train_epochs"] == 2
        assert trial.user_attrs["sparsity_target"] == {
            k.removeprefix("sparsity."): pytest.approx(v)
            for k, v in trial.params.items()
            if k.startswith("sparsity.")
        }


class Killed(Exception):
    """Stands for the process dying right after a checkpoint was written."""


class MemoryCheckpoints:
    """Checkpoints kept in a list; `die_after` makes `save` fail after that epoch."""

    def __init__(self, saved=(), die_after=None):
        self.saved, self.die_after = list(saved), die_after

    def latest(self):
        return self.saved[-1] if self.saved else None

    def save(self, state):
        self.saved.append(state)
        if state["epoch"] == self.die_after:
            raise Killed


@pytest.mark.slow
@pytest.mark.parametrize("killed_after", [1, 2, 3])  # mid dense, at pruning, mid fine-tuning
def test_a_run_resumed_from_a_checkpoint_ends_as_an_uninterrupted_run(tiny_splits, killed_after):
    settings = TrainSettings(**conf_defaults("train", epochs=2, finetune_epochs=2, batch_size=32))
    pipe = TrialPipeline(CNNSpace(), tiny_splits, MagnitudePruning(), settings, torch.device("cpu"))
    candidate = CNNSpace().sample(FixedTrial(PARAMS))
    whole = MemoryCheckpoints()
    uninterrupted, _ = pipe.run(candidate, seed=1, checkpoints=whole)
    assert [state["epoch"] for state in whole.saved] == [1, 2, 3, 4]
    assert uninterrupted.resumed_from_epoch == 0

    first_try = MemoryCheckpoints(die_after=killed_after)
    with pytest.raises(Killed):
        pipe.run(candidate, seed=1, checkpoints=first_try)
    resumed, _ = pipe.run(candidate, seed=1, checkpoints=MemoryCheckpoints(first_try.saved))
    assert resumed.resumed_from_epoch == killed_after
    assert resumed.values() == uninterrupted.values()
    assert resumed.test_accuracy == uninterrupted.test_accuracy
    assert resumed.dense_accuracy == uninterrupted.dense_accuracy


def test_an_overall_sparsity_is_shared_out_by_the_allocation_rule(tiny_splits):
    space = CNNSpace(sparsity={"high": 0.95, "allocation": "lamp"})
    arch_params = {key: value for key, value in PARAMS.items() if key.startswith("arch.")}
    candidate = space.sample(FixedTrial({**arch_params, "sparsity.overall": 0.9}))
    assert candidate.sparsity == {} and candidate.allocation.sparsity == 0.9
    result, model = pipeline(tiny_splits).run(candidate, seed=0)

    dense = space.build(candidate, tiny_splits.in_shape, tiny_splits.n_classes)
    counts = {name: dense.get_submodule(name).weight.numel() for name in candidate.layers}
    removed = sum(result.sparsity_achieved[name] * n for name, n in counts.items())
    assert removed / sum(counts.values()) == pytest.approx(0.9, abs=1e-3)
    assert set(result.sparsity_target) == set(counts)
    assert len(set(result.sparsity_target.values())) > 1  # LAMP: not one ratio for all


def test_an_unknown_allocation_rule_is_refused():
    with pytest.raises(ValueError, match="allocation must be per_layer or one of"):
        CNNSpace(sparsity={"allocation": "biggest"})
