"""Nonzero parameters and sparse-aware FLOPs of a model.

FLOPs follow `torch.utils.flop_counter`: one multiply-add is two FLOPs, and only the
multiply-adds of convolution and linear layers count (no bias additions, normalisation,
activations or pooling). A layer whose weight has density d counts d times its dense cost.
"""

from __future__ import annotations

import torch
from torch import nn

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every convolution and linear layer of `model`, by its module path."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


def nonzero_params(model: nn.Module) -> int:
    """Number of nonzero entries over every parameter tensor (pruning masks applied)."""
    total = 0
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            # With torch.nn.utils.prune attached, `weight_orig` holds the unmasked
            # values and the module attribute `weight` the masked ones.
            tensor = getattr(module, name[: -len("_orig")]) if name.endswith("_orig") else param
            total += int(torch.count_nonzero(tensor))
    return total


def dense_params(model: nn.Module) -> int:
    """Number of entries over every parameter tensor, zeros included."""
    return sum(p.numel() for p in model.parameters())


def weight_density(layer: nn.Module) -> float:
    """Share of nonzero entries in a layer's (masked) weight."""
    weight = layer.weight
    return int(torch.count_nonzero(weight)) / weight.numel()


@torch.no_grad()
def layer_flops(model: nn.Module, in_shape: tuple[int, ...]) -> dict[str, int]:
    """Dense FLOPs of each conv/linear layer for one input sample of shape `in_shape`."""
    flops: dict[str, int] = {}
    hooks = []

    def record(name: str):
        def hook(layer: nn.Module, inputs, output) -> None:
            weight = layer.weight
            if isinstance(layer, nn.Linear):
                macs = output.numel() * layer.in_features
            else:  # each output element sees in_channels / groups * kernel entries
                macs = output.numel() * weight[0].numel()
            flops[name] = flops.get(name, 0) + 2 * macs

        return hook

    for name, layer in prunable_layers(model).items():
        hooks.append(layer.register_forward_hook(record(name)))
    was_training = model.training
    model.eval()
    try:
        parameter = next(model.parameters())
        model(torch.zeros(1, *in_shape, device=parameter.device, dtype=parameter.dtype))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return flops


def sparse_flops(model: nn.Module, in_shape: tuple[int, ...]) -> int:
    """FLOPs for one sample with each conv/linear layer scaled by its weight density."""
    layers = prunable_layers(model)
    return round(
        sum(
            flops * weight_density(layers[name])
            for name, flops in layer_flops(model, in_shape).items()
        )
    )


def dense_flops(model: nn.Module, in_shape: tuple[int, ...]) -> int:
    """FLOPs for one sample as if every weight were nonzero."""
    return sum(layer_flops(model, in_shape).values())
