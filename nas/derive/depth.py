"""The residual blocks of a network that a candidate may leave out: runs of consecutive
children of an `nn.Sequential` that keep their input's shape and compute the identity
when their weights are zero (torchvision's ResNet blocks, MobileNetV2's inverted
residuals with a skip connection). A candidate keeps the first blocks of each run: its
depth; the others become `nn.Identity`, as Once-for-All's elastic depth drops a stage's
last blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from nas.prune.methods import evaluating


@dataclass(frozen=True)
class BlockRun:
    """Consecutive residual `blocks` (module paths) of one `nn.Sequential`; a candidate
    keeps the first `depth` of them, 0 to all."""

    name: str
    blocks: tuple[str, ...]


def block_runs(model: nn.Module, example: torch.Tensor) -> list[BlockRun]:
    """The runs of `model`'s residual blocks, in registration order; `example` is an
    input batch. A run is named after its Sequential, or after its first block where the
    Sequential holds several runs (or is the model itself)."""
    inputs, outputs, counts = _block_inputs(model, example)
    runs: list[BlockRun] = []
    for path, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        found, current = [], []
        for index, child in enumerate(module):
            block = f"{path}.{index}" if path else str(index)
            if counts.get(block) == 1 and _is_residual(child, inputs[block], outputs[block]):
                current.append(block)
            elif current:
                found.append(tuple(current))
                current = []
        if current:
            found.append(tuple(current))
        for blocks in found:
            name = path if len(found) == 1 and path else blocks[0]
            runs.append(BlockRun(name, blocks))
    return runs


def left_out(runs: list[BlockRun], depths: Mapping[str, int]) -> set[str]:
    """The blocks left out where each run keeps the first `depths[run.name]` (all of a
    run `depths` does not name)."""
    return {block for run in runs for block in run.blocks[depths.get(run.name, len(run.blocks)) :]}


def drop_blocks(model: nn.Module, blocks: set[str]) -> None:
    """Replace each of `blocks` (module paths) in `model` by `nn.Identity`."""
    for block in blocks:
        parent, _, index = block.rpartition(".")
        sequential = model.get_submodule(parent) if parent else model
        sequential[int(index)] = nn.Identity()


def _block_inputs(model: nn.Module, example: torch.Tensor) -> tuple[dict, dict, dict]:
    """Each Sequential child's input and output on `example`, and how often it ran."""
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def record(path: str):
        def hook(_, args, output):
            counts[path] = counts.get(path, 0) + 1
            if len(args) == 1 and isinstance(args[0], torch.Tensor):
                inputs[path], outputs[path] = args[0].detach(), output
            else:
                counts[path] += 1  # not a one-tensor block: never left out

        return hook

    hooks = [
        child.register_forward_hook(record(f"{path}.{index}" if path else str(index)))
        for path, module in model.named_modules()
        if isinstance(module, nn.Sequential)
        for index, child in enumerate(module)
    ]
    try:
        with evaluating(model), torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return inputs, outputs, counts


def _is_residual(block: nn.Module, x: torch.Tensor, y: object) -> bool:
    """Whether `block`, which mapped `x` to `y`, keeps its shape, has weights, and with
    every weight, bias and statistic zero computes `x` (or its ReLU): a skip connection
    around what its weights compute, so leaving it out keeps the network whole."""
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        return False
    if not any(True for _ in block.parameters()):
        return False
    zeroed = copy.deepcopy(block)
    with torch.no_grad():
        for tensor in [*zeroed.parameters(), *zeroed.buffers()]:
            if tensor.is_floating_point():
                tensor.zero_()
    probe = x.abs() + 0.5  # positive, so a ReLU after the addition changes nothing
    with evaluating(zeroed), torch.no_grad():
        out = zeroed(probe)
    return isinstance(out, torch.Tensor) and torch.allclose(out, probe)
