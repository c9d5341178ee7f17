"""Views of a study that its charts draw: a projection onto some objectives, the dense
reference its measures are normalised by, its fronts and per-layer sparsity."""

from __future__ import annotations

import contextlib
import copy
import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from graphlib import TopologicalSorter
from itertools import pairwise

import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from nas.record import measures
from nas.record.attrs import DENSE_FLOPS, DENSE_PARAMS, SPARSITY_ACHIEVED


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning (`set_metric_names`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials of `study`, in order."""
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def feasible(trial: FrozenTrial) -> bool:
    """Whether `trial` keeps within the study's budgets (its constraints)."""
    return all(value <= 0 for value in trial.constraints.values())


def projection(study: optuna.Study, metrics: Sequence[str]) -> optuna.Study:
    """An in-memory copy of `study` with only the objectives `metrics`, in that order, and
    every trial (all states) under its own number: its `best_trials` are that projection's
    Pareto front."""
    indices = [study.metric_names.index(metric) for metric in metrics]
    projected = optuna.create_study(directions=[study.directions[i] for i in indices])
    for trial in study.get_trials(deepcopy=False):
        copied = copy.copy(trial)
        # not only COMPLETE trials have values: another worker may be finishing one
        copied.values = None if trial.values is None else [trial.values[i] for i in indices]
        projected.add_trial(copied)
    with quiet():
        projected.set_metric_names(list(metrics))
    return projected


def front_steps(projected: optuna.Study) -> np.ndarray:
    """The Pareto front of a 2-D `projection` (x minimised, y maximised) as rows (x, y) in
    increasing x: the corners of its step line, each point holding until the next."""
    points = np.array([trial.values for trial in projected.best_trials], dtype=float)
    points = points.reshape(-1, 2)  # also without a feasible trial
    return points[np.lexsort((points[:, 1], points[:, 0]))]


def trial_text(trial: FrozenTrial) -> str:
    """The number, objective values, parameters and user attrs of `trial`, as indented
    JSON (what Optuna's charts show of a trial)."""
    attrs = {"user_attrs": trial.user_attrs} if trial.user_attrs else {}
    fields = {"number": trial.number, "values": trial.values, "params": trial.params, **attrs}
    return json.dumps(fields, indent=2, default=str)


def dense_reference(study: optuna.Study) -> tuple[int, int]:
    """The dense parameters and FLOPs of the largest dense model the complete trials of
    `study` trained (user attrs `dense_params`, `dense_flops`)."""
    trials = complete_trials(study)
    return (
        max(DENSE_PARAMS.of(trial) for trial in trials),
        max(DENSE_FLOPS.of(trial) for trial in trials),
    )


@dataclass(frozen=True)
class SparsityMatrix:
    """Achieved sparsity of each prunable layer (rows, in network order) of each Pareto-front
    trial (columns, most accurate first); `percent` is NaN where a trial lacks the layer."""

    layers: list[str]
    trials: list[int]
    labels: list[str]
    percent: np.ndarray

    def cell_texts(self) -> list[list[str]]:
        """The percentages to write in the cells, blank where a trial lacks the layer."""
        return [
            ["" if np.isnan(value) else f"{value:.1f}" for value in row] for row in self.percent
        ]


def _network_order(layer_lists: Iterable[Sequence[str]]) -> list[str]:
    """Every layer named in `layer_lists`, each list in network order, merged: a layer comes
    after every layer that precedes it in some list; layers left unordered go alphabetically
    (so `block3.conv` before `hidden` even when no trial has both)."""
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for layers in layer_lists:
        for layer in layers:
            sorter.add(layer)
        for before, after in pairwise(layers):
            sorter.add(after, before)
    sorter.prepare()
    ready: set[str] = set()
    order = []
    while sorter.is_active():
        ready.update(sorter.get_ready())
        layer = min(ready)
        ready.remove(layer)
        order.append(layer)
        sorter.done(layer)
    return order


def layer_sparsity(study: optuna.Study) -> SparsityMatrix:
    """The achieved sparsity (user attr `sparsity_achieved`) of the Pareto-front trials."""
    names = study.metric_names

    def accuracy(trial: FrozenTrial) -> float:
        return measures.metric(trial, "accuracy", names)

    front = sorted(
        study.best_trials,
        key=lambda t: (-accuracy(t), measures.metric(t, "nonzero_params", names)),
    )
    achieved = [SPARSITY_ACHIEVED.of(trial) for trial in front]
    layers = _network_order(list(ratios) for ratios in achieved)
    percent = np.array(
        [[100 * ratios.get(layer, np.nan) for ratios in achieved] for layer in layers],
        dtype=float,
    ).reshape(len(layers), len(front))
    return SparsityMatrix(
        layers=layers,
        trials=[trial.number for trial in front],
        labels=[f"#{trial.number} {accuracy(trial):.1%}" for trial in front],
        percent=percent,
    )
