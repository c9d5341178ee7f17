"""Per-layer unstructured magnitude pruning with masks held during fine-tuning.

"Pruning" here means removing weights. Optuna's own *pruners* stop unpromising trials
early; this module has nothing to do with them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import prune


def weights_to_remove(numel: int, ratio: float) -> int:
    """How many of `numel` weights a sparsity `ratio` removes (nearest whole weight)."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"sparsity ratio must be in [0, 1), got {ratio!r}")
    return round(ratio * numel)


class MagnitudePruning:
    """Zero the smallest-magnitude weights of each named layer, to that layer's own ratio."""

    def apply(self, model: nn.Module, ratios: Mapping[str, float]) -> None:
        """Attach a pruning mask to each layer in `ratios` (module path -> sparsity ratio)."""
        for name, ratio in ratios.items():
            layer = model.get_submodule(name)
            prune.l1_unstructured(
                layer, "weight", amount=weights_to_remove(layer.weight.numel(), ratio)
            )


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


def achieved_sparsity(model: nn.Module, names: list[str]) -> dict[str, float]:
    """Share of zero weights in each named layer."""
    result = {}
    for name in names:
        weight = model.get_submodule(name).weight
        result[name] = 1.0 - int(torch.count_nonzero(weight)) / weight.numel()
    return result
