from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.prune.methods import (
    MagnitudePruning,
    NMPruning,
    achieved_sparsity,
    make_permanent,
    weight_counts,
    weights_to_remove,
)


def small_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 7, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(7 * 4 * 4, 13),
        nn.ReLU(),
        nn.Linear(13, 3),
    )


@pytest.mark.parametrize("ratio", [0.0, 0.05, 0.33, 0.5, 0.77, 0.95])
def test_each_layer_reaches_its_own_ratio_to_within_one_weight(ratio):
    model = small_model()
    ratios = {"0": ratio, "3": min(ratio + 0.02, 0.99), "5": ratio / 2}
    dense = weight_counts(model, list(ratios))
    MagnitudePruning().apply(model, ratios)
    make_permanent(model)
    achieved = achieved_sparsity(model, dense)
    for name, target in ratios.items():
        numel = model.get_submodule(name).weight.numel()
        assert abs(achieved[name] - target) * numel <= 0.5 + 1e-9, name


def test_the_smallest_magnitudes_are_the_ones_removed():
    layer = nn.Linear(10, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[5.0, -0.1, 3.0, 0.2, -4.0, 0.3, 2.0, -0.05, 1.0, 6.0]]))
    model = nn.Sequential(layer)
    MagnitudePruning().apply(model, {"0": 0.4})
    make_permanent(model)
    assert layer.weight.tolist() == [[5.0, 0.0, 3.0, 0.0, -4.0, 0.0, 2.0, 0.0, 1.0, 6.0]]


def test_masks_hold_zeros_through_training_and_folding():
    model = small_model()
    MagnitudePruning().apply(model, {"0": 0.5, "3": 0.8})
    zero_before = model[3].weight == 0
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(5):
        loss = model(torch.randn(8, 1, 6, 6)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.all(model[3].weight[zero_before] == 0)
    make_permanent(model)
    assert torch.all(model[3].weight[zero_before] == 0)
    assert not hasattr(model[3], "weight_orig")
    assert {name for name, _ in model.named_parameters()} == {
        "0.weight",
        "0.bias",
        "3.weight",
        "3.bias",
        "5.weight",
        "5.bias",
    }


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_ratios_outside_zero_to_one_are_rejected(ratio):
    with pytest.raises(ValueError, match=str(ratio)):
        weights_to_remove(100, ratio)


def test_two_to_four_keeps_the_two_largest_of_every_four_input_channels():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(8, 3, 3), nn.Flatten(), nn.Linear(12, 5))
    NMPruning(m=4).apply(model, {"0": 0.5, "2": 0.5})
    make_permanent(model)
    conv_groups = model[0].weight.movedim(1, -1).reshape(-1, 4)
    linear_groups = model[2].weight.reshape(-1, 4)
    for groups in (conv_groups, linear_groups):
        assert (groups != 0).sum(dim=1).tolist() == [2] * len(groups)


def test_nm_takes_n_from_the_ratio_and_falls_back_to_unstructured_when_shapes_do_not_allow():
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 6), nn.Linear(6, 10))
    dense = weight_counts(model, ["0", "1", "2"])
    NMPruning(m=4).apply(model, {"0": 0.75, "1": 0.2, "2": 0.5})
    make_permanent(model)
    achieved = achieved_sparsity(model, dense)
    assert achieved["0"] == 0.75  # 1:4
    assert achieved["1"] == 0.25  # n = round(0.8 * 4) = 3: the 3:4 pattern
    assert achieved["2"] == 0.5  # 6 inputs: unstructured at 50 %


def test_pruning_again_only_adds_zeros():
    model = small_model()
    MagnitudePruning().apply(model, {"3": 0.5})
    first = model[3].weight_mask.clone()
    with torch.no_grad():
        model[3].weight_orig.mul_(-3.0).add_(0.01)  # training moved the weights
    MagnitudePruning().apply(model, {"3": 0.8})
    second = model[3].weight_mask
    assert not (second.bool() & ~first.bool()).any(), "a pruned weight came back"
    assert int(second.sum()) == second.numel() - weights_to_remove(second.numel(), 0.8)
