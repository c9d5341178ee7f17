from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import FixedTrial

from nas.prune.counting import prunable_layers
from nas.space import SparsityGrid
from search_spaces.cnn import CNNSpace

TWO_BLOCKS_WITH_HIDDEN = {
    "arch.blocks": 2,
    "arch.block1.channels": 8,
    "arch.block2.channels": 16,
    "arch.kernel_size": 5,
    "arch.hidden": 32,
    "sparsity.block1.conv": 0.1,
    "sparsity.block2.conv": 0.5,
    "sparsity.hidden": 0.9,
    "sparsity.head": 0.3,
}


def test_fixed_trial_gives_the_candidate_it_names():
    candidate = CNNSpace().sample(FixedTrial(TWO_BLOCKS_WITH_HIDDEN))
    assert candidate.arch == {"channels": [8, 16], "kernel_size": 5, "hidden": 32}
    assert candidate.sparsity == {
        "block1.conv": 0.1,
        "block2.conv": 0.5,
        "hidden": 0.9,
        "head": 0.3,
    }


def test_sparsity_is_sampled_only_for_layers_the_candidate_has():
    params = {
        "arch.blocks": 1,
        "arch.block1.channels": 8,
        "arch.kernel_size": 3,
        "arch.hidden": 0,
        "sparsity.block1.conv": 0.2,
        "sparsity.head": 0.4,
    }
    candidate = CNNSpace().sample(FixedTrial(params))
    assert candidate.sparsity == {"block1.conv": 0.2, "head": 0.4}


def test_every_conv_and_linear_layer_gets_a_sparsity_parameter():
    space = CNNSpace(blocks=(1, 3))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(12):
        trial = study.ask()
        candidate = space.sample(trial)
        model = space.build(candidate, (1, 28, 28), 10)
        assert set(candidate.sparsity) == set(prunable_layers(model))
        assert {f"sparsity.{name}" for name in candidate.sparsity} == {
            name for name in trial.params if name.startswith("sparsity.")
        }
        study.tell(trial, 0.0)


def test_sparsity_values_lie_on_the_configured_grid():
    grid = SparsityGrid(low=0.2, high=0.8, step=0.2)
    space = CNNSpace(sparsity=grid)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        seen.update(space.sample(trial).sparsity.values())
        study.tell(trial, 0.0)
    assert seen <= {0.2, 0.4, 0.6, 0.8}
    assert len(seen) > 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sparsity": {"low": 0.0, "high": 1.0, "step": 0.05}},
        {"sparsity": {"low": -0.1, "high": 0.5, "step": 0.05}},
        {"sparsity": {"low": 0.6, "high": 0.5, "step": 0.05}},
        {"blocks": (0, 2)},
        {"channels": ()},
        {"hidden": (-1,)},
    ],
)
def test_bad_ranges_are_rejected_quoting_the_value(kwargs):
    with pytest.raises(ValueError, match="got"):
        CNNSpace(**kwargs)


def test_build_runs_on_inputs_too_small_to_pool_three_times():
    params = dict(
        TWO_BLOCKS_WITH_HIDDEN,
        **{"arch.blocks": 3, "arch.block3.channels": 8, "sparsity.block3.conv": 0.0},
    )
    space = CNNSpace()
    model = space.build(space.sample(FixedTrial(params)), (1, 4, 4), 3)
    assert model(torch.zeros(2, 1, 4, 4)).shape == (2, 3)
