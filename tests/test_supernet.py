"""The weight-sharing supernet: every architecture of every built-in space is a slice of
it, and the slice computes exactly what the supernet computes for that architecture."""

from __future__ import annotations

import optuna
import pytest
import torch

from nas.supernet.elastic import Supernet, cut
from search_spaces.cnn import CNNSpace
from search_spaces.mlp import MLPSpace
from search_spaces.mobilenet import MobileNetSpace
from search_spaces.resnet import ResNetSpace

SPACES = {
    "cnn": CNNSpace(),
    "mlp": MLPSpace(),
    "resnet": ResNetSpace(),
    "mobilenet": MobileNetSpace(),
}
IN_SHAPE, N_CLASSES = (1, 12, 12), 4


def random_candidates(space, count: int, seed: int = 0):
    """`count` architectures of `space` drawn at random (the sampler's way)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.sample(study.ask()) for _ in range(count)]


def perturbed(supernet: Supernet) -> Supernet:
    """`supernet` with random weights and BatchNorm statistics, so that a slice taken from
    the wrong place cannot match by accident."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in [*supernet.parameters(), *supernet.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return supernet


@pytest.mark.parametrize("name", SPACES)
def test_a_sliced_network_computes_what_the_supernet_computes_for_it(name):
    space = SPACES[name]
    supernet = perturbed(space.supernet(IN_SHAPE, N_CLASSES)).eval()
    x = torch.randn(5, *IN_SHAPE, generator=torch.Generator().manual_seed(2))
    for candidate in random_candidates(space, 6):
        network = space.build(candidate, IN_SHAPE, N_CLASSES)
        network.load_state_dict(supernet.weights_for(candidate))
        expected = network.eval()(x)
        assert expected.shape == (5, N_CLASSES)
        torch.testing.assert_close(supernet(x, candidate), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", SPACES)
def test_architectures_share_the_first_channels_of_the_largest(name):
    space = SPACES[name]
    supernet = perturbed(space.supernet(IN_SHAPE, N_CLASSES))
    largest = supernet.weights_for(supernet.largest)
    for candidate in random_candidates(space, 6, seed=3):
        for key, tensor in supernet.weights_for(candidate).items():
            shared = supernet.shared(supernet.shared_name(candidate, key))
            torch.testing.assert_close(tensor, cut(shared, tensor.shape))
            if key in largest and supernet.shared_name(candidate, key) == key:
                torch.testing.assert_close(tensor, cut(largest[key], tensor.shape))


def test_gradients_of_a_sub_network_reach_only_its_slice():
    space = CNNSpace(blocks=(1, 1), channels=(8, 16), kernel_sizes=(3, 5), hidden=(0,))
    supernet = space.supernet(IN_SHAPE, N_CLASSES).train()
    (small,) = [c for c in random_candidates(space, 20) if c.arch["channels"] == [8]][:1]
    supernet(torch.randn(4, *IN_SHAPE), small).sum().backward()
    grad = supernet.shared("block1.conv.weight").grad
    kernel = small.arch["kernel_size"]
    inner = cut(grad, torch.Size((8, 1, kernel, kernel)))
    assert inner.abs().sum() > 0
    assert grad[8:].abs().sum() == 0


def test_a_kernel_smaller_than_the_shared_one_is_its_centre():
    shared = torch.arange(25.0).reshape(1, 1, 5, 5)
    assert cut(shared, torch.Size((1, 1, 3, 3))).flatten().tolist() == [
        6, 7, 8, 11, 12, 13, 16, 17, 18
    ]  # fmt: skip
    with pytest.raises(ValueError, match="cannot cut shape"):
        cut(shared, torch.Size((2, 1, 3, 3)))
