"""Layer sensitivity: one architecture trained densely once, then each prunable layer pruned
alone (the others dense) to each sparsity of a grid, optionally fine-tuned, and evaluated.
The accuracy lost per layer is written as a table and plots, and turned into per-layer
sparsity caps for a search (`space.sparsity.layer_high`)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, fields, replace
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial
from torch import nn

from nas.checks import at_least, checked, within
from nas.errors import UsageError
from nas.progress import progress
from nas.prune.allocation import METHODS, allocate
from nas.report.charts.files import write_chart
from nas.report.sensitivity_chart import by_layer, percent, sensitivity_chart
from nas.search.configured import configured_space
from nas.search.recorded import recorded_config
from nas.search.reference import ReferenceTrial, reference_candidate
from nas.search.study import Search
from nas.space import Candidate, SearchSpace, ShiftGrid
from nas.trial.dense_cache import arch_seed
from nas.trial.pipeline import TrialPipeline


@dataclass(frozen=True)
class Point:
    """One layer pruned alone to one sparsity, and what the network measured then."""

    layer: str
    sparsity: float
    accuracy: float
    accuracy_drop: float  # dense accuracy minus `accuracy`
    nonzero_params: int


def checked_grid(grid: Any) -> list[float]:
    """`sensitivity.grid` sorted, each value a number in [0, 1); UsageError otherwise."""
    checked("sensitivity.grid", grid, tuple[float, ...], within(0, 1, "[)"))
    if not grid:
        raise UsageError(f"sensitivity.grid must hold at least one sparsity, got {grid!r}")
    return sorted({float(v) for v in grid})


def measure(
    pipeline: TrialPipeline, candidate: Candidate, seed: int, grid: Sequence[float]
) -> tuple[float, list[Point]]:
    """Prune each layer of `candidate` alone to each sparsity of `grid`, starting from its
    dense weights (trained once from `seed`, then taken from the pipeline's dense cache,
    which must keep one entry), fine-tune for the pipeline's `finetune_epochs` and evaluate.
    Returns the dense validation accuracy and the points, layer by layer."""
    points, dense = [], 0.0
    runs = [(layer, sparsity) for layer in candidate.layers for sparsity in grid]
    for layer, sparsity in progress(runs, desc="sensitivity", unit="model"):
        result, _ = pipeline.run(Candidate(candidate.arch, {layer: sparsity}), seed)
        dense = result.dense_accuracy
        drop = round(dense - result.accuracy, 6)
        points.append(Point(layer, sparsity, result.accuracy, drop, result.nonzero_params))
    return dense, points


def shifts_yaml(method: str, grid: ShiftGrid, overall: float, shifts: Mapping[str, float]) -> str:
    """The suggested shifts as the YAML lines that follow the caps, with how they came."""
    return (
        f"# shifts: per layer, log2(tolerated density / {method}'s density) on the shift grid,\n"
        f"# {method} sharing out the overall sparsity the caps add up to ({overall:g}); for\n"
        f"# study.warm_start_shifts with space.sparsity.shift on\n"
        + yaml.safe_dump({"shifts": dict(shifts)}, sort_keys=False)
    )


def layer_bounds(points: Sequence[Point], tolerance: float) -> dict[str, float]:
    """Per layer, the highest sparsity of `points` that cost at most `tolerance` validation
    accuracy; 0.0 (keep it dense) when every sparsity cost more."""
    bounds: dict[str, float] = {}
    for point in points:
        within = point.accuracy_drop <= tolerance
        bounds[point.layer] = max(bounds.get(point.layer, 0.0), point.sparsity if within else 0.0)
    return bounds


def layer_map(values: Mapping[str, float]) -> str:
    """`values` as a Hydra dict value: `{layer:value,...}`."""
    return "{" + ",".join(f"{layer}:{float(value)!r}" for layer, value in values.items()) + "}"


def layer_high_override(bounds: Mapping[str, float]) -> str:
    """The Hydra override that caps a search's per-layer sparsity at `bounds`."""
    return f"space.sparsity.layer_high={layer_map(bounds)}"


def shift_overrides(grid: ShiftGrid, shifts: Mapping[str, float]) -> str:
    """The Hydra overrides that turn shifts on with `grid` and start a search from `shifts`,
    quoted for a shell."""
    step = "null" if grid.step is None else repr(float(grid.step))
    on = f"space.sparsity.shift={{low:{float(grid.low)!r},high:{float(grid.high)!r},step:{step}}}"
    return f"'{on}' 'study.warm_start_shifts={layer_map(shifts)}'"


def suggested_shifts(
    model: nn.Module,
    bounds: Mapping[str, float],
    method: str,
    grid: ShiftGrid,
    generator: torch.Generator,
) -> tuple[float, dict[str, float]]:
    """The overall sparsity `bounds` add up to (each layer of `model` at its cap, weighted by
    its weights), and per layer the shift that moves allocation rule `method`'s ratio there
    towards its cap: log2(tolerated density / the rule's density), on `grid`. A layer that
    tolerates more pruning than the rule gives it gets a negative shift (keep less), a
    fragile one a positive shift."""
    counts = {layer: model.get_submodule(layer).weight.numel() for layer in bounds}
    overall = sum(bounds[layer] * n for layer, n in counts.items()) / sum(counts.values())
    overall = round(overall, 6)
    rule = allocate(method, model, list(bounds), overall, generator)
    shifts = {
        layer: grid.nearest(math.log2((1 - bounds[layer]) / (1 - rule[layer]))) for layer in bounds
    }
    return overall, shifts


def space_layers(space: SearchSpace) -> set[str]:
    """The prunable layers of the space's largest architecture and of every architecture
    that differs from it in one parameter: for the spaces here, every layer a candidate has."""
    largest, trial = reference_candidate(space)
    layers = set(largest.layers)
    for name, distribution in trial.distributions.items():
        if name.startswith("sparsity."):
            continue
        if isinstance(distribution, CategoricalDistribution):
            values = distribution.choices
        elif isinstance(distribution, IntDistribution):
            values = range(distribution.low, distribution.high + 1, distribution.step)
        else:
            values = (distribution.low, distribution.high)
        for value in values:
            layers.update(space.sample(ReferenceTrial({name: value})).layers)
    return layers


def rule_shifts(
    cfg: DictConfig,
    pipeline: TrialPipeline,
    candidate: Candidate,
    seed: int,
    bounds: Mapping[str, float],
) -> tuple[str, ShiftGrid, float, dict[str, float]] | None:
    """Under an allocation rule, the rule, the space's shift grid (the default grid while
    shifts are off), and what `suggested_shifts` makes of `bounds` on `candidate`'s dense
    weights (cached by `pipeline` from `seed`); None for per-layer ratios."""
    method = OmegaConf.select(cfg, "space.sparsity.allocation", default="per_layer")
    if method not in METHODS:
        return None
    model = pipeline.space.build(candidate, pipeline.splits.in_shape, pipeline.splits.n_classes)
    model.load_state_dict(pipeline.dense_cache.get(candidate.arch, seed).weights)
    grid = ShiftGrid.of(OmegaConf.select(cfg, "space.sparsity.shift")) or ShiftGrid()
    generator = torch.Generator().manual_seed(seed)
    return method, grid, *suggested_shifts(model, bounds, method, grid, generator)


def check_layer_names(cfg: DictConfig) -> None:
    """UsageError when `space.sparsity.layer_high` or `study.warm_start_shifts` names a
    layer the space does not have."""
    keys = ("space.sparsity.layer_high", "study.warm_start_shifts")
    given = {key: OmegaConf.select(cfg, key) for key in keys}
    if not any(given.values()):
        return
    known = space_layers(configured_space(cfg))  # checks the caps' values first
    for key, layers in given.items():
        unknown = sorted(set(layers) - known) if isinstance(layers, Mapping) else []
        if unknown:
            raise UsageError(
                f"{key}: the space has no layer {', '.join(unknown)} "
                f"(its layers: {', '.join(sorted(known))})"
            )


def with_trial(cfg: DictConfig, study: optuna.Study, trial: FrozenTrial) -> DictConfig:
    """`cfg` with the space and data configs `study` searched, and `baseline.arch` set to
    the architecture parameters of `trial`."""
    attrs = study.user_attrs
    if "space_config" not in attrs:
        raise UsageError(f"study {study.study_name!r} is not a nas search: no space_config")
    changed = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    arch = {k: v for k, v in trial.params.items() if not k.startswith("sparsity.")}
    for group in ("space", "data"):
        OmegaConf.update(changed, group, recorded_config(study, group), merge=False)
    OmegaConf.update(changed, "baseline.arch", arch, merge=False)
    return changed


def write_csv(points: Sequence[Point], path: Path) -> None:
    """The points as CSV, one row per (layer, sparsity)."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(field.name for field in fields(Point))
        writer.writerows(astuple(point) for point in points)


def _epochs(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")


def table(points: Sequence[Point], bounds: Mapping[str, float]) -> str:
    """Validation accuracy (%) per layer (rows) and sparsity (columns), with each cap."""
    grid = sorted({p.sparsity for p in points})
    layers = by_layer(points)
    width = max(len("layer"), *map(len, layers))
    lines = [f"{'layer':<{width}}" + "".join(f"{percent(s):>8}" for s in grid) + "     cap"]
    for layer, line in layers.items():
        cells = "".join(f"{100 * p.accuracy:>8.1f}" for p in line)
        lines.append(f"{layer:<{width}}{cells}{bounds[layer]:>8g}")
    return "\n".join(lines)


def _space_choice() -> str:
    """The `+space=` choice of this run as the command line gave it (NAME outside Hydra)."""
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get("space"))
    return "NAME"


def run_sensitivity(
    cfg: DictConfig, launch_dir: Path, run_dir: Path, source: str | None = None
) -> list[Point]:
    """Measure the layer sensitivity of the architecture `baseline.arch` (the rest of its
    parameters at their largest) with `cfg.sensitivity`'s grid and fine-tuning; print the
    table and write `sensitivity.csv`, `.png`, `.html` and the caps `sensitivity_bounds.yaml`
    into `run_dir`. `source` says where the architecture comes from (default: baseline.arch
    or the space's largest). Returns the points."""
    options = cfg.sensitivity
    grid = checked_grid(options.grid)
    tolerance = checked("sensitivity.tolerance", options.tolerance, float, at_least(0))
    epochs = checked("sensitivity.finetune_epochs", options.finetune_epochs, int, at_least(0))
    search = Search.from_config(cfg, launch_dir, dense_cache=1)
    pipeline = search.pipeline
    pipeline = replace(pipeline, settings=replace(pipeline.settings, finetune_epochs=epochs))
    candidate, _ = reference_candidate(pipeline.space, cfg.baseline.arch)
    description = pipeline.space.describe(candidate)
    source = source or ("baseline.arch" if cfg.baseline.arch else "the space's largest")
    print(
        f"architecture: {description} ({source}); "
        f"{len(candidate.layers)} layers x {len(grid)} sparsities"
    )
    seed = arch_seed(search.seed, candidate.arch)
    dense, points = measure(pipeline, candidate, seed, grid)
    bounds = layer_bounds(points, tolerance)
    shifted = rule_shifts(cfg, pipeline, candidate, seed, bounds)

    run_dir.mkdir(parents=True, exist_ok=True)
    table_path = run_dir / "sensitivity.csv"
    write_csv(points, table_path)
    caption = (
        f"{description}; dense training: {_epochs(pipeline.settings.epochs)}, "
        f"fine-tuning after pruning: {_epochs(epochs)}"
    )
    chart = sensitivity_chart(points, dense, tolerance, caption)
    page, image = write_chart(chart, run_dir, "sensitivity")
    paths = [table_path, image, page]
    bounds_path = run_dir / "sensitivity_bounds.yaml"
    bounds_path.write_text(
        f"# python -m nas sensitivity: per layer of {description}, the highest sparsity of\n"
        f"# {grid} costing at most {tolerance} validation accuracy (0: none did)\n"
        + yaml.safe_dump({"layer_high": bounds}, sort_keys=False)
        + (shifts_yaml(*shifted) if shifted else "")
    )
    print(
        f"\nvalidation accuracy (%) with one layer pruned (dense: {100 * dense:.1f}); cap: the "
        f"highest sparsity losing at most {tolerance:g}\n{table(points, bounds)}"
    )
    names = ", ".join(path.name for path in [*paths, bounds_path])
    print(f"written to {run_dir}: {names}")
    if shifted:
        rule, shift_grid, overall, shifts = shifted
        print(
            f"to start a search from the shifts these bounds suggest against {rule} at "
            f"overall sparsity {overall:g}:\n  python -m nas search +space={_space_choice()} "
            f"{shift_overrides(shift_grid, shifts)}"
        )
    print(
        f"to cap a search's per-layer sparsity at these bounds:\n"
        f"  python -m nas search +space={_space_choice()} '{layer_high_override(bounds)}'"
    )
    return points
