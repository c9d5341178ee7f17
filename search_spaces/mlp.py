"""A multilayer perceptron on the flattened input: hidden linear layers with one shared
activation, then a linear classifier, with a sparsity ratio for every linear layer."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

import optuna
from torch import nn

from nas.space import Candidate, SparsityGrid, inclusive_range, positive_choices
from nas.supernet.elastic import Supernet

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class MLPSpace:
    """Depth, width per hidden layer, activation, and per-layer sparsity.

    Args:
        depth: inclusive range (min, max) of hidden layers.
        widths: choices of width for each hidden layer.
        activations: choices among relu, gelu, tanh, silu (one for the whole net).
        sparsity: grid of per-layer sparsity ratios (keys low, high, step).
    """

    def __init__(
        self,
        depth: Sequence[int] = (1, 3),
        widths: Sequence[int] = (64, 128, 256),
        activations: Sequence[str] = ("relu", "gelu", "tanh", "silu"),
        sparsity: dict | SparsityGrid | None = None,
    ) -> None:
        self.depth = inclusive_range("depth", depth)
        self.widths = positive_choices("widths", widths)
        if not activations or any(a not in ACTIVATIONS for a in activations):
            raise ValueError(
                f"space.activations must be among {', '.join(ACTIVATIONS)}, got {activations!r}"
            )
        self.activations = [str(a) for a in activations]
        self.sparsity = SparsityGrid.of(sparsity)

    def sample(self, trial: optuna.Trial) -> Candidate:
        """Suggest the architecture, then one sparsity ratio per linear layer it has."""
        depth = trial.suggest_int("arch.depth", *self.depth)
        arch = {
            "widths": [
                trial.suggest_categorical(f"arch.layer{i}.width", self.widths)
                for i in range(1, depth + 1)
            ],
            "activation": trial.suggest_categorical("arch.activation", self.activations),
        }
        return self.sparsity.candidate(trial, arch, self.layer_names(arch))

    @staticmethod
    def layer_names(arch: dict) -> list[str]:
        """Module paths of the linear layers that `build` creates for `arch`."""
        return [f"layer{i}" for i in range(1, len(arch["widths"]) + 1)] + ["head"]

    def build(self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        """The dense network for `candidate`, taking inputs of shape `in_shape`."""
        arch = candidate.arch
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        features = math.prod(in_shape)
        for i, width in enumerate(arch["widths"], start=1):
            layers[f"layer{i}"] = nn.Linear(features, width)
            layers[f"act{i}"] = ACTIVATIONS[arch["activation"]]()
            features = width
        layers["head"] = nn.Linear(features, n_classes)
        return nn.Sequential(layers)

    def supernet(self, in_shape: tuple[int, ...], n_classes: int) -> Supernet:
        """The weight-sharing supernet of every architecture of the space: the deepest,
        widest network; a shallower one uses its first layers and the shared classifier."""
        largest = Candidate(
            {"widths": [max(self.widths)] * self.depth[1], "activation": self.activations[0]}
        )
        return Supernet(partial(self.build, in_shape=in_shape, n_classes=n_classes), [largest])

    def describe(self, candidate: Candidate) -> str:
        """A one-line architecture summary, e.g. `mlp 256-128 gelu > head`."""
        arch = candidate.arch
        return f"mlp {'-'.join(map(str, arch['widths']))} {arch['activation']} > head"
