"""A small MobileNet: a stem conv, inverted-residual blocks made of torchvision's
`Conv2dNormActivation` and `SqueezeExcitation`, global average pooling and a linear
classifier, with a sparsity ratio for every conv (SE convs too) and the head.

A block halves the resolution (stride 2) when it widens the network and the feature map
is at least 4 pixels on its shorter side, so 12x12 and 28x28 inputs both work.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

import optuna
import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation

from nas.space import Candidate, SparsityGrid, inclusive_range, positive_choices
from nas.supernet.elastic import Supernet

MIN_SIZE_TO_DOWNSAMPLE = 4


class InvertedResidual(nn.Module):
    """expand 1x1 (identity when `expansion` is 1) -> depthwise kxk -> optional SE
    (identity without) -> project 1x1 (no activation); adds the input when the stride
    is 1 and the channels are kept."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expansion: int,
        kernel: int,
        stride: int,
        se: bool,
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = (
            Conv2dNormActivation(in_channels, hidden, 1, activation_layer=nn.ReLU6)
            if expansion != 1
            else nn.Identity()
        )
        self.depthwise = Conv2dNormActivation(
            hidden, hidden, kernel, stride, groups=hidden, activation_layer=nn.ReLU6
        )
        self.se = SqueezeExcitation(hidden, max(1, hidden // 4)) if se else nn.Identity()
        self.project = Conv2dNormActivation(hidden, out_channels, 1, activation_layer=None)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return x + out if self.residual else out


class MobileNetSpace:
    """Number of blocks; per block expansion, kernel size, width and SE; per-layer sparsity.

    Args:
        blocks: inclusive range (min, max) of inverted-residual blocks.
        expansions: choices of expansion ratio for each block.
        kernel_sizes: choices of (odd) depthwise kernel size for each block.
        widths: choices of output channels for each block.
        se: choices of squeeze-excitation for each block (true, false).
        stem_width: output channels of the stem conv.
        sparsity: grid of per-layer sparsity ratios (keys low, high, step).
    """

    def __init__(
        self,
        blocks: Sequence[int] = (1, 4),
        expansions: Sequence[int] = (1, 3, 6),
        kernel_sizes: Sequence[int] = (3, 5),
        widths: Sequence[int] = (16, 24, 32),
        se: Sequence[bool] = (True, False),
        stem_width: int = 16,
        sparsity: dict | SparsityGrid | None = None,
    ) -> None:
        self.blocks = inclusive_range("blocks", blocks)
        self.expansions = positive_choices("expansions", expansions)
        self.widths = positive_choices("widths", widths)
        if not kernel_sizes or any(int(k) < 1 or int(k) % 2 == 0 for k in kernel_sizes):
            raise ValueError(
                f"space.kernel_sizes must be positive odd integers, got {kernel_sizes!r}"
            )
        if not se or any(not isinstance(s, bool) for s in se):
            raise ValueError(f"space.se must be a list of true/false, got {se!r}")
        if int(stem_width) < 1:
            raise ValueError(f"space.stem_width must be a positive integer, got {stem_width!r}")
        self.kernel_sizes = [int(k) for k in kernel_sizes]
        self.se = list(dict.fromkeys(se))
        self.stem_width = int(stem_width)
        self.sparsity = SparsityGrid.of(sparsity)

    def sample(self, trial: optuna.Trial) -> Candidate:
        """Suggest the architecture, then one sparsity ratio per prunable layer it has."""
        blocks = [
            {
                "expansion": trial.suggest_categorical(f"arch.block{i}.expansion", self.expansions),
                "kernel_size": trial.suggest_categorical(
                    f"arch.block{i}.kernel_size", self.kernel_sizes
                ),
                "width": trial.suggest_categorical(f"arch.block{i}.width", self.widths),
                "se": trial.suggest_categorical(f"arch.block{i}.se", self.se),
            }
            for i in range(1, trial.suggest_int("arch.blocks", *self.blocks) + 1)
        ]
        arch = {"stem_width": self.stem_width, "blocks": blocks}
        return self.sparsity.candidate(trial, arch, self.layer_names(arch))

    @staticmethod
    def layer_names(arch: dict) -> list[str]:
        """Module paths of the convs and linear layers that `build` creates for `arch`."""
        names = ["stem.0"]
        for i, block in enumerate(arch["blocks"], start=1):
            if block["expansion"] != 1:
                names.append(f"block{i}.expand.0")
            names.append(f"block{i}.depthwise.0")
            if block["se"]:
                names += [f"block{i}.se.fc1", f"block{i}.se.fc2"]
            names.append(f"block{i}.project.0")
        return names + ["head"]

    def build(self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        """The dense network for `candidate`, taking inputs of shape `in_shape`."""
        arch = candidate.arch
        in_channels, height, width = in_shape

        def next_stride(downsample: bool) -> int:
            """2 if `downsample` and the map is large enough (tracking its new size), else 1."""
            nonlocal height, width
            if not downsample or min(height, width) < MIN_SIZE_TO_DOWNSAMPLE:
                return 1
            height, width = (height + 1) // 2, (width + 1) // 2
            return 2

        stem = Conv2dNormActivation(
            in_channels, arch["stem_width"], 3, next_stride(True), activation_layer=nn.ReLU6
        )
        layers: OrderedDict[str, nn.Module] = OrderedDict(stem=stem)
        in_channels = arch["stem_width"]
        for i, block in enumerate(arch["blocks"], start=1):
            out_channels = block["width"]
            stride = next_stride(downsample=out_channels > in_channels)
            layers[f"block{i}"] = InvertedResidual(
                in_channels,
                out_channels,
                block["expansion"],
                block["kernel_size"],
                stride,
                block["se"],
            )
            in_channels = out_channels
        layers["pool"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["head"] = nn.Linear(in_channels, n_classes)
        return nn.Sequential(layers)

    def supernet(self, in_shape: tuple[int, ...], n_classes: int) -> Supernet:
        """The weight-sharing supernet of every architecture of the space: every block at
        its widest, with the largest expansion and kernel and with squeeze-excitation when
        the space offers it (a block without SE skips those weights)."""
        block = {
            "expansion": max(self.expansions),
            "kernel_size": max(self.kernel_sizes),
            "width": max(self.widths),
            "se": True in self.se,
        }
        largest = Candidate(
            {"stem_width": self.stem_width, "blocks": [dict(block)] * self.blocks[1]}
        )
        return Supernet(partial(self.build, in_shape=in_shape, n_classes=n_classes), [largest])

    def describe(self, candidate: Candidate) -> str:
        """A one-line summary, e.g. `mobilenet e6k3c16se-e3k5c24 > head` (expansion,
        kernel, channels, squeeze-excitation)."""
        blocks = "-".join(
            f"e{b['expansion']}k{b['kernel_size']}c{b['width']}{'se' if b['se'] else ''}"
            for b in candidate.arch["blocks"]
        )
        return f"mobilenet {blocks} > head"
