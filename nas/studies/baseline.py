"""The heuristics a joint search must beat, each stored as its own study: one reference
architecture pruned by an allocation rule over a sweep of overall sparsities, and the
two-stage habit of searching dense architectures first and pruning their front after."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState

from nas.checks import checked, within
from nas.errors import UsageError
from nas.prune.allocation import METHODS
from nas.record.attrs import TRAIN_EPOCHS
from nas.record.measures import metric, objective_names
from nas.search.configured import configured
from nas.search.dense_states import ArtifactDenseStates
from nas.search.reference import reference_candidate
from nas.search.revisits import Revisits, architecture_params
from nas.search.study import Outcome, Search
from nas.studies.joint_search import finish, searched
from nas.trial.dense_cache import DenseCache

log = logging.getLogger(__name__)

BASELINES = (*METHODS, "two_stage")
TWO_STAGE_ALLOCATION = "lamp"


def sparsity_levels(count: int, low: float, high: float) -> list[float]:
    """`count` overall sparsities from `low` to `high`, evenly spaced in log density
    (0.5, 0.75, 0.875, ... rather than 0.5, 0.6, 0.7: most of the story is near 1)."""
    if count <= 0:
        return []
    if count == 1:
        return [round(high, 4)]
    densities = np.geomspace(1 - low, 1 - high, count)
    return [round(1 - float(density), 4) for density in densities]


def models_in_budget(epochs: int, first_cost: int, next_cost: int) -> int:
    """How many candidates `epochs` training epochs pay for when the first costs
    `first_cost` and each further one `next_cost`."""
    if epochs < first_cost:
        return 0
    return 1 + (epochs - first_cost) // max(next_cost, 1)


def share(total: int, ways: int) -> list[int]:
    """`total` split into `ways` whole parts differing by at most one, larger first."""
    return [total // ways + (1 if i < total % ways else 0) for i in range(ways)]


def dense_front(trials: Sequence[FrozenTrial], study: optuna.Study) -> list[FrozenTrial]:
    """The non-dominated trials among `trials` of `study`, most accurate first."""
    front = optuna.create_study(directions=study.directions)
    front.add_trials(trials)
    names = objective_names(study)
    return sorted(front.best_trials, key=lambda trial: -metric(trial, "accuracy", names))


def queue(study: optuna.Study, arch: dict, levels: Sequence[float]) -> None:
    """Queue architecture `arch` at each overall sparsity of `levels` (once)."""
    for level in levels:
        study.enqueue_trial({**arch, "sparsity.overall": level}, skip_if_exists=True)


def baseline_config(cfg: DictConfig, allocation: str, high: float) -> DictConfig:
    """`cfg` with its space sampling one overall sparsity, any value up to `high`, shared
    out among layers by the plain rule `allocation` (no shifts)."""
    changed = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    OmegaConf.update(
        changed,
        "space.sparsity",
        {"low": 0.0, "high": high, "step": None, "allocation": allocation, "shift": None},
        force_add=True,
    )
    return changed


def resumable(search: Search, study: optuna.Study, size: int) -> Search:
    """`search` keeping the dense weights of `size` architectures in memory and all of them
    as artifacts of `study`: a baseline queues its plan at the cost of fine-tuning alone,
    and a resumed one keeps to it."""
    states = ArtifactDenseStates(search.artifact_store(), study, search.pipeline.device)
    cache = DenseCache(size, states)
    return replace(search, pipeline=replace(search.pipeline, dense_cache=cache))


def sweep(search: Search, study: optuna.Study, method_cfg: DictConfig) -> Outcome:
    """Prune the reference architecture by the study's allocation rule at each overall
    sparsity the budget pays for; the first trains it densely, the rest reuse its weights."""
    search = resumable(search, study, search.pipeline.dense_cache.size)
    opts, settings = search.opts, search.pipeline.settings
    _, reference = reference_candidate(search.pipeline.space, method_cfg.arch)
    first = settings.epochs + settings.finetune_epochs
    count = opts.n_trials
    if opts.max_epochs is not None:
        count = min(count, models_in_budget(opts.max_epochs, first, settings.finetune_epochs))
    low, high = method_cfg.sparsity.low, method_cfg.sparsity.high
    queue(study, reference.architecture(), sparsity_levels(count, low, high))
    return search.optimize(study, count, opts.max_epochs, queued_only=True)


def two_stage(search: Search, study: optuna.Study, method_cfg: DictConfig) -> Outcome:
    """Spend `dense_share` of the budget (epochs and trials) searching dense architectures,
    then prune each architecture of their front by LAMP over the sparsity levels the rest
    pays for."""
    opts, settings = search.opts, search.pipeline.settings
    full, finetune = settings.epochs + settings.finetune_epochs, settings.finetune_epochs
    budget = opts.max_epochs if opts.max_epochs is not None else opts.n_trials * full
    dense_trials = max(
        1,
        min(
            math.floor(budget * method_cfg.dense_share / full),
            math.ceil(opts.n_trials * method_cfg.dense_share),
        ),
    )
    # every dense architecture's weights stay cached until its front is pruned, and its
    # dense search revisits nothing: its front is pruned afterwards
    search = replace(
        resumable(search, study, max(opts.dense_cache, dense_trials)), revisits=Revisits(0)
    )
    dense_space_cfg = OmegaConf.merge(search.cfg.space, {"sparsity": {"high": 0.0}})
    dense_space = configured(dense_space_cfg, "space")
    outcome = search.optimize(study, dense_trials, dense_trials * full, space=dense_space)
    if outcome.interrupted_by is not None or outcome.stopped:
        return outcome

    # planned from the dense search alone, so that a resumed study queues the same plan
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    dense = [trial for trial in finished if trial.params["sparsity.overall"] == 0.0]
    front = dense_front(dense, study)
    spent = sum(TRAIN_EPOCHS.of(trial) for trial in dense)
    remaining = max(0, min(opts.n_trials - len(dense), int((budget - spent) // finetune)))
    log.info(
        "two_stage: %d dense architectures tried, %d on their front; %d pruned candidates "
        "fit the remaining %d epochs",
        len(dense), len(front), remaining, budget - spent,
    )  # fmt: skip
    low, high = method_cfg.sparsity.low, method_cfg.sparsity.high
    for trial, count in zip(front, share(remaining, len(front)), strict=True):
        queue(study, architecture_params(trial.params), sparsity_levels(count, low, high))
    return search.optimize(study, len(dense) + remaining, budget, queued_only=True)


def run_baseline(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> optuna.Study:
    """Run (or resume) baseline `cfg.method` as study `<study.name>-<method>` in the
    search's storage, with the same three objectives; print and write its front."""
    method = cfg.method
    if method not in BASELINES:
        raise UsageError(
            f"unknown baseline method={method!r}; choose one of {', '.join(BASELINES)}"
        )
    method_cfg = cfg.baseline
    low = checked("baseline.sparsity.low", method_cfg.sparsity.low, float)
    high = checked("baseline.sparsity.high", method_cfg.sparsity.high, float)
    if not 0 <= low < high < 1:
        raise UsageError(
            f"baseline.sparsity must satisfy 0 <= low < high < 1, got low={low} high={high}"
        )
    checked("baseline.dense_share", method_cfg.dense_share, float, within(0, 1, "()"))
    allocation = TWO_STAGE_ALLOCATION if method == "two_stage" else method
    search = searched(baseline_config(cfg, allocation, high), launch_dir)
    study = search.open(f"{search.opts.name}-{method}")
    outcome = (two_stage if method == "two_stage" else sweep)(search, study, method_cfg)
    return finish(study, outcome, run_dir)
