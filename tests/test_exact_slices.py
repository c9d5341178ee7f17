"""Which entries of the supernet's shared tensors a sliced candidate gets, stated by
hand-indexing the shared tensors: the first output and input channels (or features), a
smaller conv kernel from the centre of the larger one, channels never centred."""

from __future__ import annotations

import pytest
import torch

from nas.space import Candidate
from tests.test_supernet import IN_SHAPE, N_CLASSES, SPACES, perturbed, random_candidates


def shared_tensor_name(space: str, candidate: Candidate, key: str) -> str:
    """The shared tensor a network's tensor `key` is cut from: its own name, except in the
    cnn space the hidden layer and the head, which are per depth, the head after a hidden
    layer apart from the one without."""
    if space != "cnn":
        return key
    depth = f"depth{len(candidate.arch['channels'])}"
    if key.startswith("hidden."):
        return f"{depth}.{key}"
    if key.startswith("head."):
        return f"{depth}.after_hidden.{key}" if candidate.arch["hidden"] else f"{depth}.{key}"
    return key


def hand_slice(shared: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """`shared[:out, :in]` (the first entries of every dimension), with a conv kernel
    (the last two dimensions of a 4-D weight) taken from the centre of `shared`'s."""
    if len(shape) == 4:
        out, inputs, height, width = shape
        top = (shared.shape[2] - height) // 2
        left = (shared.shape[3] - width) // 2
        return shared[:out, :inputs, top : top + height, left : left + width]
    if len(shape) == 2:
        return shared[: shape[0], : shape[1]]
    if len(shape) == 1:
        return shared[: shape[0]]
    assert len(shape) == 0  # a BatchNorm's num_batches_tracked
    return shared


@pytest.mark.parametrize("name", list(SPACES))
def test_every_sliced_tensor_is_the_first_channels_and_the_kernel_centre_of_its_shared_one(
    name,
):
    space = SPACES[name]
    supernet = perturbed(space.supernet(IN_SHAPE, N_CLASSES))
    narrower = smaller_kernel = 0
    for candidate in random_candidates(space, 6, seed=5):
        weights = supernet.weights_for(candidate)
        network = space.build(candidate, IN_SHAPE, N_CLASSES)
        assert weights.keys() == network.state_dict().keys()
        for key, tensor in weights.items():
            shared = supernet.shared(shared_tensor_name(name, candidate, key))
            assert tensor.shape == network.state_dict()[key].shape, key
            assert torch.equal(tensor, hand_slice(shared, tensor.shape)), key
            narrower += tensor.dim() > 0 and tensor.shape[0] < shared.shape[0]
            smaller_kernel += tensor.dim() == 4 and tensor.shape[-1] < shared.shape[-1]
    assert narrower, "no sliced tensor was narrower than its shared one"
    if name in ("cnn", "mobilenet"):  # kernels of 3 or 5 (resnet's are all 3x3, mlp has none)
        assert smaller_kernel, "no sliced kernel was smaller than its shared one"


def test_a_narrow_cnn_takes_the_first_channels_of_each_layer_and_the_middle_3x3_of_5x5():
    """Stated entry by entry: channels 8-16 with a 3x3 kernel and a hidden layer of 32,
    sliced out of the default cnn space's supernet (blocks of 32 channels, 5x5 kernels,
    hidden layers of 64)."""
    space = SPACES["cnn"]
    supernet = perturbed(space.supernet(IN_SHAPE, N_CLASSES))
    candidate = Candidate({"channels": [8, 16], "kernel_size": 3, "hidden": 32})
    weights = supernet.weights_for(candidate)

    def shared(name: str) -> torch.Tensor:
        return supernet.shared(name)

    assert shared("block1.conv.weight").shape == (32, 1, 5, 5)
    assert torch.equal(
        weights["block1.conv.weight"], shared("block1.conv.weight")[:8, :1, 1:4, 1:4]
    )
    assert torch.equal(
        weights["block2.conv.weight"], shared("block2.conv.weight")[:16, :8, 1:4, 1:4]
    )
    for stat in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(weights[f"block1.norm.{stat}"], shared(f"block1.norm.{stat}")[:8])
        assert torch.equal(weights[f"block2.norm.{stat}"], shared(f"block2.norm.{stat}")[:16])
    # 16 channels of 3x3 after two pools of 12x12, flattened channel by channel: the first
    # 144 features of the 32-channel flatten are the first 16 channels' 9 positions each
    assert shared("depth2.hidden.weight").shape == (64, 32 * 9)
    assert torch.equal(weights["hidden.weight"], shared("depth2.hidden.weight")[:32, :144])
    assert torch.equal(weights["hidden.bias"], shared("depth2.hidden.bias")[:32])
    head = shared("depth2.after_hidden.head.weight")
    assert torch.equal(weights["head.weight"], head[:, :32])
    assert torch.equal(weights["head.bias"], shared("depth2.after_hidden.head.bias"))
