"""A plain CNN: conv blocks (conv, batch norm, ReLU, 2x2 max pool), an optional hidden
linear layer, and a linear classifier, with a sparsity ratio for every conv and linear layer."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

import optuna
from torch import nn

from nas.space import Candidate, SparsityGrid, inclusive_range, positive_choices
from nas.supernet.elastic import Supernet


class CNNSpace:
    """Depth, channels per block, kernel size, hidden width, and per-layer sparsity.

    Args:
        blocks: inclusive range (min, max) of conv blocks.
        channels: choices of output channels for each block.
        kernel_sizes: choices of the (square) kernel size shared by all blocks.
        hidden: choices of hidden linear width; 0 means no hidden layer.
        sparsity: grid of per-layer sparsity ratios (keys low, high, step).
    """

    def __init__(
        self,
        blocks: Sequence[int] = (1, 3),
        channels: Sequence[int] = (8, 16, 32),
        kernel_sizes: Sequence[int] = (3, 5),
        hidden: Sequence[int] = (0, 32, 64),
        sparsity: dict | SparsityGrid | None = None,
    ) -> None:
        self.blocks = inclusive_range("blocks", blocks)
        self.channels = positive_choices("channels", channels)
        self.kernel_sizes = positive_choices("kernel_sizes", kernel_sizes)
        if not hidden or any(int(h) < 0 for h in hidden):
            raise ValueError(f"space.hidden must be non-negative integers, got {hidden!r}")
        self.hidden = [int(h) for h in hidden]
        self.sparsity = SparsityGrid.of(sparsity)

    def sample(self, trial: optuna.Trial) -> Candidate:
        """Suggest the architecture, then one sparsity ratio per prunable layer it has."""
        n_blocks = trial.suggest_int("arch.blocks", *self.blocks)
        arch = {
            "channels": [
                trial.suggest_categorical(f"arch.block{i}.channels", self.channels)
                for i in range(1, n_blocks + 1)
            ],
            "kernel_size": trial.suggest_categorical("arch.kernel_size", self.kernel_sizes),
            "hidden": trial.suggest_categorical("arch.hidden", self.hidden),
        }
        return self.sparsity.candidate(trial, arch, self.layer_names(arch))

    @staticmethod
    def layer_names(arch: dict) -> list[str]:
        """Module paths of the prunable layers that `build` creates for `arch`."""
        names = [f"block{i}.conv" for i in range(1, len(arch["channels"]) + 1)]
        if arch["hidden"]:
            names.append("hidden")
        return names + ["head"]

    def build(self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        """The dense network for `candidate`, taking inputs of shape `in_shape`."""
        arch = candidate.arch
        in_channels, height, width = in_shape
        kernel = arch["kernel_size"]
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i, out_channels in enumerate(arch["channels"], start=1):
            block = OrderedDict(
                conv=nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                norm=nn.BatchNorm2d(out_channels),
                act=nn.ReLU(),
            )
            if min(height, width) >= 2:
                block["pool"] = nn.MaxPool2d(2)
                height, width = height // 2, width // 2
            layers[f"block{i}"] = nn.Sequential(block)
            in_channels = out_channels
        layers["flatten"] = nn.Flatten()
        features = in_channels * height * width
        if arch["hidden"]:
            layers["hidden"] = nn.Linear(features, arch["hidden"])
            layers["hidden_act"] = nn.ReLU()
            features = arch["hidden"]
        layers["head"] = nn.Linear(features, n_classes)
        return nn.Sequential(layers)

    def supernet(self, in_shape: tuple[int, ...], n_classes: int) -> Supernet:
        """The weight-sharing supernet of every architecture of the space: the widest
        blocks with the largest kernel, and for each depth its own hidden layer and
        classifier, since the flattened features depend on the depth."""
        widest, kernel = max(self.channels), max(self.kernel_sizes)
        covering = [
            Candidate({"channels": [widest] * depth, "kernel_size": kernel, "hidden": hidden})
            for depth in range(self.blocks[1], self.blocks[0] - 1, -1)
            for hidden in sorted({max(self.hidden), min(self.hidden)}, reverse=True)
        ]
        build = partial(self.build, in_shape=in_shape, n_classes=n_classes)
        return Supernet(build, covering, shared_name=self.shared_name)

    @staticmethod
    def shared_name(candidate: Candidate, name: str) -> str:
        """The supernet tensor `name` is cut from: per depth for the layers after the
        flatten, the classifier after a hidden layer apart from the one without."""
        depth = f"depth{len(candidate.arch['channels'])}"
        if name.startswith("hidden."):
            return f"{depth}.{name}"
        if name.startswith("head."):
            return f"{depth}.after_hidden.{name}" if candidate.arch["hidden"] else f"{depth}.{name}"
        return name

    def describe(self, candidate: Candidate) -> str:
        """A one-line architecture summary, e.g. `conv 16-32 k3 > fc 64 > head`."""
        arch = candidate.arch
        parts = [f"conv {'-'.join(map(str, arch['channels']))} k{arch['kernel_size']}"]
        if arch["hidden"]:
            parts.append(f"fc {arch['hidden']}")
        return " > ".join(parts + ["head"])
