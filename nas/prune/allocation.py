"""Allocation rules that share one overall sparsity target out among a trained dense model's
layers as per-layer pruning ratios: uniform, uniform+, global magnitude, LAMP, ERK and random."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from nas.checks import checked, within
from nas.prune.methods import effective_weight

METHODS = ("uniform", "uniform_plus", "global", "lamp", "erk", "random")
# uniform+: the last layer (the classifier head) keeps at least this share of its weights.
HEAD_MIN_DENSITY = 0.2
DECIMALS = 6


def allocate(
    method: str,
    model: nn.Module,
    layers: Sequence[str],
    sparsity: float,
    generator: torch.Generator | None = None,
    shifts: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Per-layer ratios (module path -> share of that layer's weights to remove) that remove
    `sparsity` of the weights of `layers` taken together, by the allocation rule `method`.

    `shifts` (module path -> shift; a layer it does not name: 0) moves the rule's share
    between layers, the overall sparsity unchanged: for `global` and `lamp`, a layer's
    scores are multiplied by 2^shift before the one threshold; for the other rules, its
    density relative to the others is multiplied by 2^shift, clamped to [floor, 1] and the
    rest rescaled. A positive shift keeps more of the layer; shifts of 0 give the plain rule.

    `layers` are conv/linear module paths in forward order (first = input layer, last =
    head); only `.weight` counts, as the layer computes with it now (masks applied). Ratios
    are rounded to 6 decimals and capped so that every layer keeps at least one weight;
    `generator` seeds `random` (a fresh one seeded 0 when None)."""
    _check(method, layers, sparsity)
    factors = _shift_factors(layers, shifts or {})
    weights = [effective_weight(model.get_submodule(name)) for name in layers]
    counts = [weight.numel() for weight in weights]
    if method in ("global", "lamp"):
        score = _magnitude_scores if method == "global" else _lamp_scores
        scores = [score(w) * f for w, f in zip(weights, factors, strict=True)]
        removed = _removals_below_global_threshold(scores, sparsity)
        ratios = [r / n for r, n in zip(removed, counts, strict=True)]
    else:
        plain = _density_scores(method, [tuple(w.shape) for w in weights], generator)
        scores = [s * f for s, f in zip(plain, factors, strict=True)]
        floors = _density_floors(method, counts)
        densities = _solve_densities(scores, counts, floors, 1.0 - sparsity)
        ratios = [1.0 - density for density in densities]
    return {name: _finish(ratio, n) for name, ratio, n in zip(layers, ratios, counts, strict=True)}


def _check(method: str, layers: Sequence[str], sparsity: float) -> None:
    if method not in METHODS:
        raise ValueError(
            f"unknown sparsity allocation method {method!r}; choose one of {', '.join(METHODS)}"
        )
    checked("overall sparsity", sparsity, float, within(0, 1, "[)"))
    if not layers:
        raise ValueError("sparsity allocation needs at least one layer, got none")


def _shift_factors(layers: Sequence[str], shifts: Mapping[str, float]) -> list[float]:
    """2^shift for each of `layers` (1.0 where `shifts` names none); ValueError for a shift
    on another layer or one that is not a finite number."""
    unknown = sorted(set(shifts) - set(layers))
    if unknown:
        raise ValueError(f"sparsity shifts name layers not allocated: {', '.join(unknown)}")
    checked("sparsity shifts", shifts, Mapping[str, float])
    return [2.0 ** shifts.get(name, 0.0) for name in layers]


def _finish(ratio: float, numel: int) -> float:
    """`ratio` rounded to 6 decimals and capped at the largest 6-decimal ratio that still
    keeps a weight once pruned (round(ratio * numel) <= numel - 1)."""
    cap = ((2 * numel - 1) * 10**DECIMALS - 1) // (2 * numel) / 10**DECIMALS
    return min(round(ratio, DECIMALS), cap) + 0.0


# --- global threshold over per-weight scores: global magnitude and LAMP ---------------------


def _magnitude_scores(weight: torch.Tensor) -> torch.Tensor:
    """|w| of every weight, flat."""
    return weight.detach().flatten().cpu().double().abs()


def _lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """LAMP score of every weight (in ascending order of magnitude, which is all a count per
    layer needs): w_u^2 over the sum of w_v^2 of the weights at least as large, itself
    included. The largest scores 1; pruned (zero) weights score 0."""
    ascending = weight.detach().flatten().cpu().double().square().sort().values
    at_least_as_large = ascending.flip(0).cumsum(0).flip(0)
    return ascending / at_least_as_large.clamp_min(torch.finfo(torch.float64).tiny)


def _removals_below_global_threshold(scores: list[torch.Tensor], sparsity: float) -> list[int]:
    """How many weights of each layer are among the round(sparsity * all) lowest `scores` of
    all layers together; weights tied at the threshold go from the earlier layer first. Each
    layer's top-scored weight is never counted, so no layer is emptied; when that leaves fewer
    weights than the target asks for, all the others go (the closest reachable)."""
    protected = [_with_top_protected(layer_scores) for layer_scores in scores]
    total = sum(layer_scores.numel() for layer_scores in protected)
    remove = min(round(sparsity * total), total - len(protected))
    if remove == 0:
        return [0] * len(protected)
    threshold = torch.cat(protected).kthvalue(remove).values
    removed = [int((layer_scores < threshold).sum()) for layer_scores in protected]
    ties_left = remove - sum(removed)
    for index, layer_scores in enumerate(protected):
        taken = min(ties_left, int((layer_scores == threshold).sum()))
        removed[index] += taken
        ties_left -= taken
    return removed


def _with_top_protected(layer_scores: torch.Tensor) -> torch.Tensor:
    """A copy of `layer_scores` whose highest entry is infinite, so that it is never removed."""
    protected = layer_scores.clone()
    protected[protected.argmax()] = float("inf")
    return protected


# --- shared density solver: uniform, uniform+, ERK and random --------------------------------


def _density_scores(
    method: str, shapes: list[tuple[int, ...]], generator: torch.Generator | None
) -> list[float]:
    """Relative density of each layer before scaling: ERK's sum(dims) / prod(dims), uniform
    draws in (0, 1] for random, equal for uniform and uniform+."""
    if method == "erk":
        return [sum(shape) / math.prod(shape) for shape in shapes]
    if method == "random":
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        draws = torch.rand(len(shapes), generator=generator, dtype=torch.float64)
        return (1.0 - draws).tolist()
    return [1.0] * len(shapes)


def _density_floors(method: str, counts: list[int]) -> list[float]:
    """Least density of each layer: one weight everywhere; for uniform+ (2 layers or more)
    the first layer stays dense and the last keeps `HEAD_MIN_DENSITY`."""
    floors = [1.0 / n for n in counts]
    if method == "uniform_plus" and len(counts) > 1:
        floors[0] = 1.0
        floors[-1] = max(floors[-1], HEAD_MIN_DENSITY)
    return floors


def _solve_densities(
    scores: list[float], counts: list[int], floors: list[float], target: float
) -> list[float]:
    """Densities clip(c * score, floor, 1) with the one c > 0 that keeps `target` of all
    weights; the floors themselves when they alone keep more (the closest reachable)."""

    def densities(c: float) -> list[float]:
        return [min(1.0, max(floor, c * s)) for s, floor in zip(scores, floors, strict=True)]

    def kept(c: float) -> float:
        return sum(d * n for d, n in zip(densities(c), counts, strict=True))

    wanted = target * sum(counts)
    # kept(c) is continuous, non-decreasing, and linear between these points; at the last
    # one every layer is dense (all kept), so the loop stops there at the latest.
    points = sorted(
        {0.0, *(f / s for f, s in zip(floors, scores, strict=True)), *(1.0 / s for s in scores)}
    )
    low = 0.0
    for high in points:
        if kept(high) >= wanted:
            break
        low = high
    kept_low, kept_high = kept(low), kept(high)
    if kept_high <= kept_low:
        return densities(high)
    return densities(low + (high - low) * (wanted - kept_low) / (kept_high - kept_low))
