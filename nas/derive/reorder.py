"""Channels of a trained network put in order of importance, once, without changing what
it computes: within each group of coupled channels the most important come first, so
that keeping a group's first N channels keeps its N most important."""

from __future__ import annotations

import torch
from torch import nn

from nas.derive.groups import ChannelGroup
from nas.prune.methods import channel_norms, evaluating, remove_outputs_fn


def reorder_by_importance(
    model: nn.Module, groups: list[ChannelGroup], example: torch.Tensor
) -> None:
    """Permute the channels of each of `groups` of `model` in place, by the L2 norm of
    each channel over the group's layers, largest first: the same permutation for the
    producers' outputs, their BatchNorms and the next layers' inputs (through adds,
    `cat` and flatten, as torch-pruning's dependency graph maps them)."""
    import torch_pruning as tp

    for group in groups:
        order = channel_norms(model, list(group.layers)).argsort(descending=True, stable=True)
        with evaluating(model):
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        layer = model.get_submodule(group.name)
        pruning_group = graph.get_pruning_group(
            layer, remove_outputs_fn(layer), idxs=order.tolist()
        )
        for dep, idxs in pruning_group:
            module = dep.target.module
            if not isinstance(module, nn.Module) or type(module).__name__.startswith("_"):
                continue  # torch-pruning's stand-in for a functional op: no tensors
            if graph.is_out_channel_pruning_fn(dep.handler):
                _permute_outputs(module, list(idxs))
            elif graph.is_in_channel_pruning_fn(dep.handler):
                _permute(module.weight, 1, list(idxs))


def _permute_outputs(module: nn.Module, order: list[int]) -> None:
    """Put the output channels of `module` (weight, bias, BatchNorm statistics) at the
    positions `order` takes up in the order `order` gives."""
    size = module.weight.shape[0]
    tensors = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
    for tensor in tensors:
        if tensor.dim() >= 1 and tensor.shape[0] == size:
            _permute(tensor, 0, order)


@torch.no_grad()
def _permute(tensor: torch.Tensor, dim: int, order: list[int]) -> None:
    """Reorder `tensor` along `dim` in place: the entries at the sorted positions of
    `order` become those `order` lists, in its order."""
    index = torch.arange(tensor.shape[dim], device=tensor.device)
    index[sorted(order)] = torch.tensor(order, device=tensor.device)
    tensor.copy_(tensor.index_select(dim, index))
