"""The groups of coupled output channels of a network, as torch-pruning's dependency graph
finds them, and the layers that cannot be cut, each with its reason.

A group is every Conv2d and Linear whose output channels must go together (through
residual adds, depthwise convolutions, `cat` and BatchNorm), named after its first layer
in the forward order. A group is frozen, never cut, when it holds the network's output
layer (its outputs are the classes), when a module on its channels is called more than
once (a reused or tied module), when an operation on them is one the graph cannot slice
safely (`chunk`, `split`, `unbind`, slicing, an op torch-pruning does not know), or a
grouped convolution other than a depthwise one, or a module with parameters of its own
outside the standard layers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from nas.prune.methods import calls, evaluating, output_layer

WIDTH_LAYERS = (nn.Conv2d, nn.Linear)
# Modules whose channels the graph slices exactly.
SLICEABLE = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
# torch-pruning's stand-ins for functional operations that keep channels in order.
ORDERED_OPS = ("_ElementWiseOp", "_ConcatOp", "_ReshapeOp", "_OutputOp", "_ExpandOp")


@dataclass(frozen=True)
class ChannelGroup:
    """Coupled output channels: `layers` (Conv2d / Linear module paths) all produce the
    same `channels` channels, which go together."""

    name: str
    layers: tuple[str, ...]
    channels: int


@dataclass(frozen=True)
class Frozen:
    """A group of `layers` that is never cut, and why."""

    layers: tuple[str, ...]
    reason: str


def channel_groups(
    model: nn.Module, example: torch.Tensor
) -> tuple[list[ChannelGroup], list[Frozen]]:
    """The groups of `model`'s coupled output channels that can be cut, in forward order,
    and those that cannot, with their reasons; `example` is an input batch."""
    import torch_pruning as tp

    paths = {module: path for path, module in model.named_modules()}
    with evaluating(model):
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        protected = output_layer(model, example)
        counts = _call_counts(model, example)
    order = {path: index for index, path in enumerate(counts)}
    groups, frozen = [], []
    for group in graph.get_all_groups(root_module_types=list(WIDTH_LAYERS)):
        producers = tuple(
            sorted(
                {
                    paths[dep.target.module]
                    for dep, _ in group
                    if isinstance(dep.target.module, WIDTH_LAYERS)
                    and graph.is_out_channel_pruning_fn(dep.handler)
                },
                key=lambda path: order.get(path, len(order)),
            )
        )
        if not producers:
            continue
        reason = _frozen_because(group, graph, paths, protected, counts)
        if reason:
            frozen.append(Frozen(producers, reason))
        else:
            channels = model.get_submodule(producers[0]).weight.shape[0]
            groups.append(ChannelGroup(producers[0], producers, channels))
    groups.sort(key=lambda g: order.get(g.name, len(order)))
    return groups, frozen


def _frozen_because(group, graph, paths: dict, protected: nn.Module, counts: Counter) -> str | None:
    """Why `group` (torch-pruning's, of dependency `graph`) may not be cut, or None."""
    for dep, _ in group:
        module = dep.target.module
        name = paths.get(module, type(module).__name__)
        if module is protected and graph.is_out_channel_pruning_fn(dep.handler):
            return f"{name} computes the network's outputs (the classes)"
        if isinstance(module, nn.Module) and counts.get(name, 1) > 1:
            return f"{name} is called {counts[name]} times in one forward pass (reused or tied)"
        if (
            isinstance(module, nn.Conv2d)
            and module.groups > 1
            and not (module.groups == module.in_channels == module.out_channels)
        ):
            return f"{name} is a grouped convolution that is not depthwise"
        if type(module).__name__.startswith("_"):
            if type(module).__name__ not in ORDERED_OPS:
                op = type(module).__name__.strip("_").removesuffix("Op").lower()
                return f"an operation on its channels ({op}) cannot be followed exactly"
        elif not isinstance(module, SLICEABLE):
            return f"{name} ({type(module).__name__}) is not a layer whose channels can be sliced"
    return None


def _call_counts(model: nn.Module, example: torch.Tensor) -> Counter:
    """How many times each leaf module with parameters runs on `example`, by path, in
    the order they first run."""

    def leaf_with_parameters(module: nn.Module) -> bool:
        return not list(module.children()) and bool(list(module.parameters(recurse=False)))

    return Counter(calls(model, example, leaf_with_parameters))
