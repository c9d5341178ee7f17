from __future__ import annotations

import pytest
import torch
from optuna.trial import FixedTrial
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas.prune import counting
from nas.prune.methods import MagnitudePruning, make_permanent
from search_spaces.cnn import CNNSpace

CNN_PARAMS = [
    {"arch.blocks": 1, "arch.block1.channels": 8, "arch.kernel_size": 3, "arch.hidden": 0},
    {
        "arch.blocks": 3,
        "arch.block1.channels": 16,
        "arch.block2.channels": 32,
        "arch.block3.channels": 8,
        "arch.kernel_size": 5,
        "arch.hidden": 64,
    },
]


def counted_by_torch(model: nn.Module, in_shape) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *in_shape))
    return counter.get_total_flops()


def cnn(params) -> nn.Module:
    space = CNNSpace()
    trial = FixedTrial(
        params
        | {
            f"sparsity.{n}": 0.0
            for n in ["block1.conv", "block2.conv", "block3.conv", "hidden", "head"]
        }
    )
    return space.build(space.sample(trial), (1, 28, 28), 10).eval()


@pytest.mark.parametrize("params", CNN_PARAMS)
def test_dense_flops_agree_with_torch_flop_counter(params):
    model = cnn(params)
    assert counting.dense_flops(model, (1, 28, 28)) == counted_by_torch(model, (1, 28, 28))


def test_dense_flops_agree_for_grouped_strided_convolutions():
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, groups=8),
        nn.Flatten(),
        nn.LazyLinear(5),
    )
    model(torch.zeros(1, 4, 17, 17))
    assert counting.dense_flops(model, (4, 17, 17)) == counted_by_torch(model, (4, 17, 17))


def test_sparse_flops_scale_each_layer_by_its_weight_density():
    model = cnn(CNN_PARAMS[1])
    per_layer = counting.layer_flops(model, (1, 28, 28))
    ratios = {"block1.conv": 0.5, "block2.conv": 0.75, "hidden": 0.9}
    MagnitudePruning().apply(model, ratios)
    make_permanent(model)
    expected = sum(flops * (1 - ratios.get(name, 0.0)) for name, flops in per_layer.items())
    assert counting.sparse_flops(model, (1, 28, 28)) == pytest.approx(expected, abs=1)
    assert counting.sparse_flops(model, (1, 28, 28)) < counting.dense_flops(model, (1, 28, 28))


def test_nonzero_params_count_every_parameter_tensor_except_zeros():
    model = cnn(CNN_PARAMS[0])
    dense = counting.dense_params(model)
    assert dense == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(0.5)  # batch norm biases start at exactly zero
    assert counting.nonzero_params(model) == dense
    head = model.get_submodule("head")
    with torch.no_grad():
        head.weight[:, :10] = 0
        head.bias[:3] = 0
    assert counting.nonzero_params(model) == dense - 10 * head.out_features - 3


def test_nonzero_params_see_attached_masks_before_they_are_folded():
    model = cnn(CNN_PARAMS[0])
    dense = counting.dense_params(model)
    zeros = dense - counting.nonzero_params(model)
    head = model.get_submodule("head")
    MagnitudePruning().apply(model, {"head": 0.5})
    assert counting.nonzero_params(model) == dense - zeros - head.weight.numel() // 2
