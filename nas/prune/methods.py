"""Per-layer unstructured magnitude pruning with masks held during fine-tuning.

"Pruning" here means removing weights. Optuna's own *pruners* stop unpromising trials
early; this module has nothing to do with them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils import prune

from nas.checks import at_least, checked
from nas.prune.schedule import OneShot, Schedule

if TYPE_CHECKING:
    import torch_pruning as tp

# Channels removed by structural pruning: [layer path, channel indices] in the order they
# went; empty for methods that mask weights.
Removals = list[list]


def weights_to_remove(numel: int, ratio: float) -> int:
    """How many of `numel` weights a sparsity `ratio` removes (nearest whole weight)."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"sparsity ratio must be in [0, 1), got {ratio!r}")
    return round(ratio * numel)


def effective_weight(layer: nn.Module) -> torch.Tensor:
    """The weight the layer computes with now: original times mask once it is pruned."""
    if hasattr(layer, "weight_mask"):
        return (layer.weight_orig * layer.weight_mask).detach()
    return layer.weight.detach()


def magnitude_mask(weight: torch.Tensor, ratio: float) -> torch.Tensor:
    """Mask keeping all but the `weights_to_remove` smallest-magnitude entries of `weight`."""
    mask = torch.ones_like(weight)
    remove = weights_to_remove(weight.numel(), ratio)
    if remove:
        smallest = torch.topk(weight.abs().flatten(), remove, largest=False).indices
        mask.view(-1)[smallest] = 0
    return mask


def nm_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor | None:
    """N:M mask: in every group of `m` consecutive input channels of each output (for a
    conv, at each kernel position), keep the `n` largest magnitudes. None when the layer's
    input channels are not a multiple of `m`."""
    channels_last = weight.movedim(1, -1) if weight.dim() > 2 else weight
    if channels_last.shape[-1] % m:
        return None
    groups = channels_last.abs().reshape(-1, m)
    keep = torch.zeros_like(groups).scatter_(1, groups.topk(n, dim=1).indices, 1.0)
    mask = keep.reshape(channels_last.shape)
    return mask.movedim(-1, 1) if weight.dim() > 2 else mask


def set_mask(layer: nn.Module, mask: torch.Tensor) -> None:
    """Attach `mask` to `layer.weight`, or replace the mask it has (pruned stays pruned
    when the new mask comes from the effective weight, whose pruned entries are zero)."""
    if hasattr(layer, "weight_mask"):
        layer.weight_mask.copy_(mask)
    else:
        prune.custom_from_mask(layer, "weight", mask)


class PruningMethod(ABC):
    """How a trial's network loses weights. A trial calls `before_finetuning` once with
    the final ratios, `schedule_step` before each fine-tuning step the schedule prunes at,
    and `after_finetuning` once; `apply` prunes to the ratios at once. The defaults suit
    methods that mask weights while fine-tuning goes on."""

    @abstractmethod
    def apply(
        self, model: nn.Module, ratios: Mapping[str, float], example: torch.Tensor | None = None
    ) -> Removals:
        """Prune `model` to `ratios` (module path -> sparsity ratio) now; returns the
        channels removed. `example` is an input batch, for methods that trace the model."""

    def check_schedule(self, schedule: Schedule) -> None:
        """Raise ValueError when this method cannot follow `schedule`; every schedule
        suits a masking method."""
        return None

    def before_finetuning(
        self, model: nn.Module, ratios: Mapping[str, float], example: torch.Tensor
    ) -> Removals:
        """What happens to the dense `model` before fine-tuning; returns the channels
        removed. Masking methods leave it to the schedule's steps."""
        return []

    def schedule_step(self, model: nn.Module, ratios: Mapping[str, float]) -> None:
        """Prune towards `ratios` before a fine-tuning step, as the schedule says."""
        self.apply(model, ratios)

    def after_finetuning(
        self, model: nn.Module, ratios: Mapping[str, float], example: torch.Tensor
    ) -> None:
        """Reach the final `ratios` once fine-tuning is over, whatever the schedule did."""
        self.apply(model, ratios, example)

    def replay(self, model: nn.Module, removals: Removals, example: torch.Tensor) -> None:
        """Remove `removals` from a fresh `model` again (a checkpoint restored); masks
        come back with the checkpoint's own, so a masking method has nothing to do."""
        return None


class MagnitudePruning(PruningMethod):
    """Zero the smallest-magnitude weights of each named layer, to that layer's own ratio."""

    def mask(self, weight: torch.Tensor, ratio: float) -> torch.Tensor:
        """The mask that prunes `weight` to `ratio`."""
        return magnitude_mask(weight, ratio)

    def apply(
        self, model: nn.Module, ratios: Mapping[str, float], example: torch.Tensor | None = None
    ) -> Removals:
        """Mask each layer in `ratios` (module path -> sparsity ratio); a layer pruned
        before is pruned again from its effective weight, so its sparsity only grows.
        Removes no channel."""
        for name, ratio in ratios.items():
            layer = model.get_submodule(name)
            set_mask(layer, self.mask(effective_weight(layer), ratio))
        return []


class NMPruning(MagnitudePruning):
    """Semi-structured N:M pruning with `m` fixed and `n` per layer from its sampled ratio:
    n = round((1 - ratio) * m), at least 1 (ratio 0.5 with m=4 is the 2:4 pattern sparse
    tensor cores run). A layer whose input channels are not a multiple of `m` falls back
    to unstructured magnitude pruning at its ratio."""

    def __init__(self, m: int = 4) -> None:
        self.m = checked("prune.m", m, int, at_least(2))

    def mask(self, weight: torch.Tensor, ratio: float) -> torch.Tensor:
        n = min(self.m, max(1, round((1 - ratio) * self.m)))
        structured = nm_mask(weight, n, self.m)
        return magnitude_mask(weight, ratio) if structured is None else structured


def current_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The attached weight masks, by module path (empty before pruning)."""
    return {
        name: module.weight_mask
        for name, module in model.named_modules()
        if hasattr(module, "weight_mask")
    }


def restore_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Attach saved `masks` (module path -> mask) as `current_masks` returned them."""
    for name, mask in masks.items():
        layer = model.get_submodule(name)
        prune.custom_from_mask(layer, "weight", mask.to(layer.weight.device))


def make_permanent(model: nn.Module) -> None:
    """Fold every attached pruning mask into its weight, leaving plain parameters with zeros."""
    for module in model.modules():
        for name, _ in list(module.named_parameters(recurse=False)):
            if name.endswith("_orig"):
                prune.remove(module, name.removesuffix("_orig"))


def weight_counts(model: nn.Module, names: list[str]) -> dict[str, int]:
    """Number of weights of each named layer (taken before pruning: the dense counts)."""
    return {name: model.get_submodule(name).weight.numel() for name in names}


def achieved_sparsity(model: nn.Module, dense_counts: Mapping[str, int]) -> dict[str, float]:
    """Share of each layer's dense weights that are gone: zeroed, or removed with whole
    channels (`dense_counts` from `weight_counts` before pruning)."""
    result = {}
    for name, dense in dense_counts.items():
        weight = model.get_submodule(name).weight
        result[name] = 1.0 - int(torch.count_nonzero(weight)) / dense
    return result


WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode for the block (tracing it must not move batch-norm
    statistics), then back in the mode it was in."""
    training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(training)


def calls(model: nn.Module, example: torch.Tensor, which: Callable[[nn.Module], bool]) -> list[str]:
    """The module paths of `model`'s modules for which `which` holds, once per call, in the
    order they run when `model` computes `example`."""
    ran: list[str] = []
    hooks = [
        module.register_forward_hook(lambda *_, path=path: ran.append(path))
        for path, module in model.named_modules()
        if which(module)
    ]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return ran


def output_layer(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The last conv or linear layer to run when `model` computes `example`: the one
    whose outputs are the network's (the classes), whatever its name."""
    last = calls(model, example, lambda module: isinstance(module, WEIGHTED_LAYERS))[-1]
    return model.get_submodule(last)


def remove_outputs_fn(layer: nn.Module) -> Callable:
    """torch-pruning's function that removes output channels of `layer`."""
    import torch_pruning as tp

    return (
        tp.prune_linear_out_channels if isinstance(layer, nn.Linear) else tp.prune_conv_out_channels
    )


def coupled_layers(graph: tp.DependencyGraph, model: nn.Module, name: str) -> list[str]:
    """Paths of the conv and linear layers whose output channels go with those of layer
    `name` (itself included), as torch-pruning's dependency `graph` of `model` finds them."""
    layer = model.get_submodule(name)
    channels = list(range(layer.weight.shape[0]))
    group = graph.get_pruning_group(layer, remove_outputs_fn(layer), idxs=channels)
    paths = {module: path for path, module in model.named_modules()}
    return list(
        dict.fromkeys(
            paths[dep.target.module]
            for dep, _ in group
            if isinstance(dep.target.module, WEIGHTED_LAYERS)
            and graph.is_out_channel_pruning_fn(dep.handler)
        )
    )


def channel_norms(model: nn.Module, names: list[str]) -> torch.Tensor:
    """L2 norm of each output channel over the weights of all the coupled layers `names`."""
    rows = [model.get_submodule(name).weight.detach().flatten(1) for name in names]
    return torch.cat(rows, dim=1).norm(dim=1)


class ChannelPruning(PruningMethod):
    """Structured: remove output channels (conv filters, linear neurons) of smallest L2
    norm, physically, so the network gets smaller and faster. The sampled ratio is the share
    of the layer's dense output channels removed; at least `min_channels` stay.

    Layers whose output channels are coupled, through residual adds, depthwise convs or
    squeeze-excitation products (as torch-pruning's dependency graph finds them), form a
    group that loses the same channels: the group takes the largest ratio among its members
    in `ratios`, of its dense channel count, and a channel's norm is taken over all the
    group's layers. Batch norms and the next layers' inputs follow. The layer computing the
    network's output (the last conv or linear to run, whatever its name) keeps its outputs,
    the classes, with every layer coupled to them; it shrinks only through its inputs.

    Channels go once, before fine-tuning (schedule=one_shot); `apply` returns what it
    removed so that `replay` can rebuild the same shapes on a fresh model when a checkpoint
    is restored.
    """

    def __init__(self, min_channels: int = 4) -> None:
        self.min_channels = checked("prune.min_channels", min_channels, int, at_least(1))

    def apply(
        self, model: nn.Module, ratios: Mapping[str, float], example: torch.Tensor | None = None
    ) -> Removals:
        """Remove the channels `plan` picks for `ratios` (module path -> ratio), tracing
        `model` on `example`; returns the removals as [layer path, channel indices] in the
        order they were made."""
        if example is None:
            raise ValueError("channel pruning traces the model: give it an example input")
        removals = self.plan(model, ratios, example)
        self.replay(model, removals, example)
        return removals

    def check_schedule(self, schedule: Schedule) -> None:
        if not isinstance(schedule, OneShot):
            raise ValueError("prune=channel removes channels once: use it with schedule=one_shot")

    def before_finetuning(
        self, model: nn.Module, ratios: Mapping[str, float], example: torch.Tensor
    ) -> Removals:
        """Remove the channels at once: fine-tuning trains the smaller network."""
        return self.apply(model, ratios, example)

    def schedule_step(self, model: nn.Module, ratios: Mapping[str, float]) -> None:
        """Nothing: the channels went before fine-tuning."""

    def after_finetuning(
        self, model: nn.Module, ratios: Mapping[str, float], example: torch.Tensor
    ) -> None:
        """Nothing: the channels went before fine-tuning."""

    def plan(
        self, model: nn.Module, ratios: Mapping[str, float], example: torch.Tensor
    ) -> Removals:
        """The removals, [first layer of a coupled group, channel indices], one per group
        that loses channels, all worked out on `model` as it is (dense), before any go."""
        import torch_pruning as tp

        with evaluating(model):
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
            protected = output_layer(model, example)
        groups: dict[str, tuple[list[str], float]] = {}  # first member -> (members, ratio)
        for name, ratio in ratios.items():
            first = next((key for key, (members, _) in groups.items() if name in members), None)
            if first is None:
                groups[name] = (coupled_layers(graph, model, name), ratio)
            else:
                members, group_ratio = groups[first]
                groups[first] = (members, max(group_ratio, ratio))
        removals = []
        for first, (members, ratio) in groups.items():
            if any(model.get_submodule(member) is protected for member in members):
                continue
            channels = model.get_submodule(first).weight.shape[0]
            remove = min(round(ratio * channels), channels - self.min_channels)
            if remove > 0:
                norms = channel_norms(model, members)
                removals.append([first, sorted(norms.argsort()[:remove].tolist())])
        return removals

    def replay(self, model: nn.Module, removals: Removals, example: torch.Tensor) -> None:
        """Remove the given channels, in order, with their dependent layers."""
        import torch_pruning as tp

        with evaluating(model):
            for name, channels in removals:
                graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
                layer = model.get_submodule(name)
                graph.get_pruning_group(
                    layer, remove_outputs_fn(layer), idxs=list(channels)
                ).prune()
