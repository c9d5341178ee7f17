"""A small ResNet: a stride-2 stem conv, stages of basic residual blocks (the first block
of each stage after the first halves the resolution again), global average pooling and a
linear classifier, with a sparsity ratio for every conv (shortcut projections too) and the head."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

import optuna
import torch
from torch import nn

from nas.space import Candidate, SparsityGrid, inclusive_range, positive_choices
from nas.supernet.elastic import Supernet


def conv_norm(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """`conv` (no bias) then batch norm `norm`, as one module."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(
                in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False
            ),
            norm=nn.BatchNorm2d(out_channels),
        )
    )


class BasicBlock(nn.Module):
    """relu(norm2(conv2(relu(norm1(conv1(x))))) + shortcut(x)); the shortcut is a 1x1
    projection (`shortcut.conv`, `shortcut.norm`) when the shape changes, else identity."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        projects = stride != 1 or in_channels != out_channels
        self.shortcut = (
            conv_norm(in_channels, out_channels, 1, stride) if projects else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.norm2(self.conv2(self.relu(self.norm1(self.conv1(x)))))
        return self.relu(branch + self.shortcut(x))


class ResNetSpace:
    """Number of stages, width and block count per stage, and per-layer sparsity.

    Args:
        stages: inclusive range (min, max) of stages.
        widths: choices of channels for each stage.
        blocks: inclusive range (min, max) of residual blocks per stage.
        stem_width: output channels of the stem conv (3x3, stride 2).
        sparsity: grid of per-layer sparsity ratios (keys low, high, step).
    """

    def __init__(
        self,
        stages: Sequence[int] = (1, 3),
        widths: Sequence[int] = (16, 32, 64),
        blocks: Sequence[int] = (1, 2),
        stem_width: int = 16,
        sparsity: dict | SparsityGrid | None = None,
    ) -> None:
        self.stages = inclusive_range("stages", stages)
        self.blocks = inclusive_range("blocks", blocks)
        self.widths = positive_choices("widths", widths)
        if int(stem_width) < 1:
            raise ValueError(f"space.stem_width must be a positive integer, got {stem_width!r}")
        self.stem_width = int(stem_width)
        self.sparsity = SparsityGrid.of(sparsity)

    def sample(self, trial: optuna.Trial) -> Candidate:
        """Suggest the architecture, then one sparsity ratio per prunable layer it has."""
        arch: dict = {"stem_width": self.stem_width, "widths": [], "blocks": []}
        for s in range(1, trial.suggest_int("arch.stages", *self.stages) + 1):
            arch["widths"].append(trial.suggest_categorical(f"arch.stage{s}.width", self.widths))
            arch["blocks"].append(trial.suggest_int(f"arch.stage{s}.blocks", *self.blocks))
        return self.sparsity.candidate(trial, arch, self.layer_names(arch))

    @staticmethod
    def layer_names(arch: dict) -> list[str]:
        """Module paths of the convs and linear layers that `build` creates for `arch`."""
        names = ["stem.conv"]
        in_channels = arch["stem_width"]
        for s, (width, n_blocks) in enumerate(
            zip(arch["widths"], arch["blocks"], strict=True), start=1
        ):
            for b in range(1, n_blocks + 1):
                names += [f"stage{s}.block{b}.conv1", f"stage{s}.block{b}.conv2"]
                if b == 1 and (s > 1 or in_channels != width):
                    names.append(f"stage{s}.block{b}.shortcut.conv")
            in_channels = width
        return names + ["head"]

    def build(self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        """The dense network for `candidate`, taking inputs of shape `in_shape`."""
        arch = candidate.arch
        in_channels = arch["stem_width"]
        stem = conv_norm(in_shape[0], in_channels, 3, stride=2)
        stem.add_module("act", nn.ReLU())
        layers: OrderedDict[str, nn.Module] = OrderedDict(stem=stem)
        for s, (width, n_blocks) in enumerate(
            zip(arch["widths"], arch["blocks"], strict=True), start=1
        ):
            blocks = OrderedDict()
            for b in range(1, n_blocks + 1):
                stride = 2 if s > 1 and b == 1 else 1
                blocks[f"block{b}"] = BasicBlock(in_channels, width, stride)
                in_channels = width
            layers[f"stage{s}"] = nn.Sequential(blocks)
        layers["pool"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["head"] = nn.Linear(in_channels, n_classes)
        return nn.Sequential(layers)

    def supernet(self, in_shape: tuple[int, ...], n_classes: int) -> Supernet:
        """The weight-sharing supernet of every architecture of the space: every stage at
        its widest with the most blocks (a narrower stage uses the first channels)."""
        stages = self.stages[1]
        largest = Candidate(
            {
                "stem_width": self.stem_width,
                "widths": [max(self.widths)] * stages,
                "blocks": [self.blocks[1]] * stages,
            }
        )
        return Supernet(partial(self.build, in_shape=in_shape, n_classes=n_classes), [largest])

    def describe(self, candidate: Candidate) -> str:
        """A one-line architecture summary, e.g. `resnet 16x2-32x1 > head` (width x blocks)."""
        arch = candidate.arch
        stages = "-".join(
            f"{width}x{n}" for width, n in zip(arch["widths"], arch["blocks"], strict=True)
        )
        return f"resnet {stages} > head"
