"""Networks for `+space=model` benchmarks: `space.model._target_=model_networks.NAME` in
a benchmark script of this folder (its folder is on the path), or
`benchmarks.model_networks.NAME` for `python -m nas` run from the repository's root."""

from __future__ import annotations

from torch import nn

from nas.search.reference import reference_candidate
from search_spaces.cnn import CNNSpace


def cnn_largest(num_classes: int = 10, in_shape: tuple[int, int, int] = (1, 28, 28)) -> nn.Module:
    """The `cnn` space's largest network (`conv 32-32-32 k5 > fc 64 > head`), freshly
    initialised: what a user would hand the model mode."""
    space = CNNSpace()
    candidate, _ = reference_candidate(space)
    return space.build(candidate, in_shape, num_classes)
