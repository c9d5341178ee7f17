"""A weight-sharing supernet: one set of weights from which every architecture of a space
is sliced, as in Once-for-All (Cai et al. 2020).

Every parameter and buffer of a candidate's network (`space.build(candidate)`) is a slice
of one shared tensor: the first output and input channels (or features), and for a conv
kernel smaller than the shared one its centre (OFA's elastic kernel, without the kernel
transformation matrices). Which shared tensor a network's tensor is cut from is its name,
unless the space maps it elsewhere (e.g. a classifier whose input size depends on depth
gets one shared tensor per depth).

A forward pass of any architecture runs its own module with the sliced tensors in place
(`torch.func.functional_call`), so gradients flow into the shared weights and training
updates of BatchNorm statistics land in them; `weights_for` hands the same slices out as
a state_dict, so the trial's model is an ordinary standalone network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call

from nas.space import Candidate
from nas.supernet.ranks import ALONE, Ranks
from nas.supernet.synced_norm import synced_batch_norm

# A network's tensor name -> the name of the shared tensor it is cut from, for a candidate.
SharedName = Callable[[Candidate, str], str]
# space.build with the input shape and class count bound.
Builder = Callable[[Candidate], nn.Module]


def same_name(candidate: Candidate, name: str) -> str:
    """The default mapping: a tensor is cut from the shared tensor of its own name."""
    return name


def _key(shared: str) -> str:
    """`shared` as a module attribute name (no dots)."""
    return shared.replace(".", ":")


def cut(shared: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A view of `shared` of `shape`: the first entries of every dimension, except the
    last two of a 4-D conv weight, which are centred (a 3x3 kernel is the middle of a 5x5)."""
    if shared.dim() != len(shape) or any(s > m for s, m in zip(shape, shared.shape, strict=True)):
        raise ValueError(f"cannot cut shape {tuple(shape)} out of {tuple(shared.shape)}")
    index = []
    for axis, (size, largest) in enumerate(zip(shape, shared.shape, strict=True)):
        start = (largest - size) // 2 if shared.dim() == 4 and axis >= 2 else 0
        index.append(slice(start, start + size))
    return shared[tuple(index)]


class Supernet(nn.Module):
    """The shared weights of a space's networks.

    Args:
        build: makes the dense network of a candidate (`space.build` with the data's input
            shape and class count).
        covering: candidates whose networks together hold every shared tensor at its
            largest shape; the first is the space's largest network. Their initial weights
            are the supernet's.
        shared_name: maps a network's tensor name to its shared tensor's (default: itself).
    """

    def __init__(
        self,
        build: Builder,
        covering: Sequence[Candidate],
        shared_name: SharedName = same_name,
    ) -> None:
        super().__init__()
        if not covering:
            raise ValueError("a supernet needs at least one covering candidate")
        self.build = build
        self.shared_name = shared_name
        self.covering = tuple(covering)
        self.largest = covering[0]
        for candidate in covering:
            network = build(candidate)
            parameters = dict(network.named_parameters())
            for name, tensor in network.state_dict(keep_vars=True).items():
                self._adopt(shared_name(candidate, name), tensor, name in parameters)

    def _adopt(self, shared: str, tensor: torch.Tensor, is_parameter: bool) -> None:
        """Keep `tensor` as shared tensor `shared` unless one at least as large is kept."""
        key = _key(shared)
        held = self._parameters.get(key, self._buffers.get(key))
        if held is not None:
            if all(s >= t for s, t in zip(held.shape, tensor.shape, strict=True)):
                return
            if not all(s <= t for s, t in zip(held.shape, tensor.shape, strict=True)):
                raise ValueError(
                    f"shared tensor {shared!r}: shapes {tuple(held.shape)} and "
                    f"{tuple(tensor.shape)} do not nest"
                )
            delattr(self, key)
        value = tensor.detach().clone()
        if is_parameter:
            self.register_parameter(key, nn.Parameter(value))
        else:
            self.register_buffer(key, value)

    def shared(self, name: str) -> torch.Tensor:
        """The shared tensor called `name`."""
        key = _key(name)
        return self._parameters[key] if key in self._parameters else self._buffers[key]

    def views(self, candidate: Candidate, network: nn.Module) -> dict[str, torch.Tensor]:
        """Every tensor of `network` (built for `candidate`) as a view of its shared tensor."""
        views = {}
        for name, tensor in network.state_dict(keep_vars=True).items():
            shared_name = self.shared_name(candidate, name)
            try:
                views[name] = cut(self.shared(shared_name), tensor.shape)
            except KeyError as error:
                raise ValueError(
                    f"the supernet holds no {shared_name!r}: its covering candidates miss "
                    f"part of the space"
                ) from error
        return views

    def skeleton(self, candidate: Candidate) -> nn.Module:
        """`candidate`'s network without storage (on the meta device), for its structure."""
        with torch.device("meta"):
            return self.build(candidate)

    def forward(self, x: torch.Tensor, candidate: Candidate, ranks: Ranks = ALONE) -> torch.Tensor:
        """The logits of `candidate`'s network on `x`, computed with the shared weights;
        with several `ranks`, each holding a share of the batch, its BatchNorms use the
        whole batch's statistics."""
        network = self.skeleton(candidate).train(self.training)
        if ranks.world > 1:
            synced_batch_norm(network)
        return functional_call(network, self.views(candidate, network), (x,))

    def weights_for(self, candidate: Candidate) -> dict[str, torch.Tensor]:
        """A state_dict for `build(candidate)`: copies of its slices of the shared weights."""
        network = self.skeleton(candidate)
        return {
            name: view.detach().clone() for name, view in self.views(candidate, network).items()
        }
