"""The charts of a study's complete trials, each defined once (`nas.report.charts`):

- `front_3d`: every trial against all three objectives (when there are three), the
  Pareto front bright and the dominated trials faint;
- `front_<maximised>_<minimised>` for each pair of a maximised and a minimised objective,
  e.g. `front_accuracy_params`, `front_accuracy_flops`: 2-D projections, each with the
  front of that projection joined as a step line;
- `hypervolume`: the normalised hypervolume of the front after each trial (the
  front-quality benchmark's, see `nas.report.front_quality`), from 0 to 1;
- `importance_<metric>`: fANOVA importance of the parameters for each objective;
- `layer_sparsity`: achieved sparsity of each prunable layer of the Pareto-front trials,
  layers a trial lacks in grey;
- `compression`: the front as a compression curve, the best validation accuracy within
  each share of the largest dense network's nonzero parameters and FLOPs (steps), with the
  test accuracy of the same trials (`nas.report.compression`).

The study's objectives must be named (`study.set_metric_names`) after measures of
`METRIC_STYLES`. Charts that cannot be defined are left out, with the reason: those that
cannot be drawn yet (`skipped_charts`) and any whose definition fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import optuna
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from nas.report.charts.spec import TAB10, Axis, Bars, Chart, Grid, Points
from nas.report.compression import SIZES, compression_curve
from nas.report.front_quality import hypervolume_history, normalised_objectives
from nas.report.study_views import (
    complete_trials,
    dense_reference,
    feasible,
    front_steps,
    layer_sparsity,
    projection,
    trial_text,
)


class MetricStyle(NamedTuple):
    """How a measure is named on an axis and in file names, and whether it is a share drawn
    in percent."""

    title: str
    tag: str
    percent: bool


# Every measure of nas.trial.objectives.DIRECTIONS.
METRIC_STYLES = {
    "accuracy": MetricStyle("validation accuracy", "accuracy", True),
    "nonzero_params": MetricStyle("nonzero parameters", "params", False),
    "flops": MetricStyle("FLOPs per sample", "flops", False),
    "agreement": MetricStyle("agreement with the dense parent", "agreement", True),
    "macro_f1": MetricStyle("macro F1", "macro_f1", True),
    "worst_class_accuracy": MetricStyle("worst class accuracy", "worst", True),
    "kl_divergence": MetricStyle("KL divergence from the dense parent", "kl", False),
    "ece": MetricStyle("expected calibration error", "ece", True),
    "latency_ms": MetricStyle("latency per batch (ms)", "latency", False),
}
IMPORTANCE_CAPTION = "parameters that every complete trial has; share of the objective's variance"
IMPORTANCE_COLOR = "#3182bd"
HYPERVOLUME_AXIS_TITLE = "normalised hypervolume"
FRONT_COLOR = "#d62728"
DOMINATED_COLOR = "#7f7f7f"
DOMINATED_OPACITY = 0.3
INFEASIBLE_COLOR = "#ff7f0e"  # trials outside a constraint (budgets, accuracy floor)
SPARSITY_COLOR_SCALE = "Blues"
ABSENT_COLOR = "#d9d9d9"  # a layer the trial's architecture lacks
ABSENT_LABEL = "layer absent from the architecture"


class ChartPlan(NamedTuple):
    """One chart of a study: its kind (a key of `DEFINITIONS`), the definition's
    arguments after the study and title, and its title."""

    kind: str
    args: tuple
    title: str


def front_axes(study: optuna.Study) -> dict[str, tuple[str, ...]]:
    """The axes (x, y[, z]) of each front chart of `study`, by file name: all three
    objectives when there are three, and each maximised objective against each minimised
    one; maximised objectives last, so that better is up."""
    pairs = list(zip(study.metric_names, study.directions, strict=True))
    up = [name for name, direction in pairs if direction == StudyDirection.MAXIMIZE]
    down = [name for name, direction in pairs if direction == StudyDirection.MINIMIZE]
    fronts = {"front_3d": (*down, *up)} if len(pairs) == 3 else {}
    for y in up:
        for x in down:
            fronts[f"front_{METRIC_STYLES[y].tag}_{METRIC_STYLES[x].tag}"] = (x, y)
    return fronts


def spans_decades(values: Sequence[float]) -> bool:
    """Whether positive `values` span at least an order of magnitude (then a log axis helps)."""
    return len(values) > 0 and min(values) > 0 and max(values) >= 10 * min(values)


def _metric_axes(projected: optuna.Study) -> list[Axis]:
    """An axis for each objective of `projected` (a projection): log where its values span
    decades, percent for shares."""
    values = np.array([trial.values for trial in complete_trials(projected)])
    axes = []
    for metric, column in zip(projected.metric_names, values.T, strict=True):
        style = METRIC_STYLES[metric]
        log = not style.percent and spans_decades(list(column))
        axes.append(Axis(style.title, log=log, percent=style.percent))
    return axes


def _trial_points(name: str, trials: Sequence[FrozenTrial], axes: int, **style) -> Points:
    """`trials` of a projection on `axes` objectives as points at their values, each
    hovering its trial's number, values, parameters and user attrs."""
    values = np.array([trial.values for trial in trials], dtype=float).reshape(-1, axes)
    z = {"z": values[:, 2]} if axes == 3 else {}
    hover = [trial_text(trial) for trial in trials]
    return Points(name, values[:, 0], values[:, 1], hover=hover, **z, **style)


def _front_groups(projected: optuna.Study) -> dict[str, list[FrozenTrial]]:
    """The complete trials of `projected`, as dominated, infeasible (outside one of the
    study's constraints) and on its front."""
    front = {trial.number for trial in projected.best_trials}
    groups: dict[str, list[FrozenTrial]] = {"dominated": [], "infeasible": [], "front": []}
    for trial in complete_trials(projected):
        if not feasible(trial):
            groups["infeasible"].append(trial)
        else:
            groups["front" if trial.number in front else "dominated"].append(trial)
    return groups


def front_chart(study: optuna.Study, title: str, metrics: Sequence[str]) -> Chart:
    """The projection of `study` on two `metrics` (x, y): the dominated trials faint,
    infeasible trials in orange, its front bright and joined as a step line."""
    projected = projection(study, metrics)
    groups = _front_groups(projected)
    faint = {"opacity": DOMINATED_OPACITY}
    steps = front_steps(projected)
    series = [
        _trial_points("dominated", groups["dominated"], 2, color=DOMINATED_COLOR, **faint),
        _trial_points("infeasible", groups["infeasible"], 2, color=INFEASIBLE_COLOR, **faint),
        Points("Pareto front step", steps[:, 0], steps[:, 1], color=FRONT_COLOR, marker="",
               line="steps", legend=False),
        _trial_points("Pareto front", groups["front"], 2, color=FRONT_COLOR),
    ]  # fmt: skip
    x, y = _metric_axes(projected)
    return Chart(title, x, y, tuple(s for s in series if len(s.x)))


def front_3d_chart(study: optuna.Study, title: str, metrics: Sequence[str]) -> Chart:
    """Every trial of `study` against the three `metrics` (x, y, z): the Pareto front of
    all three bright, the dominated trials faint, infeasible trials as orange crosses."""
    projected = projection(study, metrics)
    groups = _front_groups(projected)
    series = [
        _trial_points("dominated", groups["dominated"], 3, color=DOMINATED_COLOR,
                      opacity=DOMINATED_OPACITY, size=5.3),
        _trial_points("infeasible", groups["infeasible"], 3, color=INFEASIBLE_COLOR,
                      marker="x"),
        _trial_points("Pareto front of all three", groups["front"], 3, color=FRONT_COLOR,
                      size=8.4),
    ]  # fmt: skip
    x, y, z = _metric_axes(projected)
    return Chart(title, x, y, tuple(s for s in series if len(s.x)), z=z, size=(8.0, 5.5))


def hypervolume_chart(study: optuna.Study, title: str) -> Chart:
    """The normalised hypervolume of the front of `study` after each complete trial, on an
    axis from 0 to 1."""
    trials = complete_trials(study)
    params, flops = dense_reference(study)
    points = normalised_objectives(trials, params, flops, study.metric_names)
    history = hypervolume_history(points, [feasible(trial) for trial in trials])
    line = Points(HYPERVOLUME_AXIS_TITLE, [trial.number for trial in trials], history,
                  line="solid", opacity=0.6, legend=False)  # fmt: skip
    caption = (
        f"volume bounded by (1, 1, 1) in error, parameters / {params:,} and "
        f"FLOPs / {flops:,} (the largest dense model trained)"
    )
    x = Axis("trial number", integer=True)
    y = Axis(HYPERVOLUME_AXIS_TITLE, range=(0.0, 1.0))
    return Chart(title, x, y, (line,), caption=caption)


def importance_chart(study: optuna.Study, title: str, metric: str) -> Chart:
    """fANOVA importance of the parameters of `study` for objective `metric`, the most
    important on top."""
    index = study.metric_names.index(metric)
    importances = get_param_importances(
        study, evaluator=FanovaImportanceEvaluator(seed=0), target=lambda t: t.values[index]
    )
    names, values = list(reversed(importances)), list(reversed(importances.values()))
    kinds = {name: type(d).__name__ for t in study.trials for name, d in t.distributions.items()}
    bars = Bars(
        labels=names,
        values=values,
        texts=[f"{value:.2f}" if value >= 0.01 else "<0.01" for value in values],
        hover=[
            f"{name} ({kinds[name]}): {value}" for name, value in zip(names, values, strict=True)
        ],
        color=IMPORTANCE_COLOR,
    )
    return Chart(title, Axis("importance"), Axis("parameter"), (bars,),
                 caption=IMPORTANCE_CAPTION, size=(8.0, 0.45 * len(names) + 1.8))  # fmt: skip


def layer_sparsity_chart(study: optuna.Study, title: str) -> Chart:
    """The achieved sparsity of each layer of the Pareto-front trials of `study`, as a heat
    map in percent, layers a trial lacks in grey."""
    matrix = layer_sparsity(study)
    hover = [
        [
            f"{layer} of trial {label}: "
            + (ABSENT_LABEL if np.isnan(value) else f"{value:.1f}% zero")
            for label, value in zip(matrix.labels, row, strict=True)
        ]
        for layer, row in zip(matrix.layers, matrix.percent, strict=True)
    ]
    grid = Grid(
        rows=matrix.layers, columns=matrix.labels, values=matrix.percent,
        texts=matrix.cell_texts(), hover=hover, scale=SPARSITY_COLOR_SCALE, range=(0.0, 100.0),
        color_title="achieved sparsity (%)", missing=ABSENT_LABEL, missing_color=ABSENT_COLOR,
    )  # fmt: skip
    n_layers, n_trials = matrix.percent.shape
    size = (max(6.0, 0.75 * n_trials + 3), 0.5 * n_layers + 2.5)
    x = Axis("Pareto-front trial (validation accuracy)")
    return Chart(title, x, Axis("layer"), (grid,), size=size)


def compression_chart(study: optuna.Study, title: str) -> Chart:
    """For nonzero parameters and FLOPs, the best validation accuracy among the feasible
    complete trials within each share of the largest dense network trained, as steps on
    a log axis, and the test accuracy of the trial each step holds, as markers."""
    trials = [trial for trial in complete_trials(study) if feasible(trial)]
    params, flops = dense_reference(study)
    reference = {"nonzero_params": params, "flops": flops}
    series = []
    for color, (size, label) in zip(TAB10, SIZES.items(), strict=False):
        curve = compression_curve(trials, reference, study.metric_names, size)
        hover = [trial_text(trial) for trial in curve.trials]
        series.append(Points(f"validation, within a share of the {label}", curve.shares,
                             curve.accuracies, color=color, line="steps", hover=hover))  # fmt: skip
        series.append(Points(f"test, same trial ({label})", curve.shares, curve.test_accuracies,
                             color=color, marker="open circle", hover=hover))  # fmt: skip
    caption = f"the largest dense network trained: {params:,} nonzero parameters, {flops:,} FLOPs"
    x = Axis("share of the largest dense network's size", log=True, percent=True)
    return Chart(title, x, Axis("accuracy", percent=True), tuple(series), caption=caption)


DEFINITIONS: dict[str, Callable[..., Chart]] = {
    "compression": compression_chart,
    "front": front_chart,
    "front_3d": front_3d_chart,
    "hypervolume": hypervolume_chart,
    "importance": importance_chart,
    "layer_sparsity": layer_sparsity_chart,
}


def chart_plans(study: optuna.Study) -> dict[str, ChartPlan]:
    """Every chart of `study` by file name, whether or not it can be drawn."""
    plans = {}
    for name, axes in front_axes(study).items():
        if len(axes) == 3:
            plans[name] = ChartPlan("front_3d", (axes,), "Pareto front of all three objectives")
        else:
            y, x = METRIC_STYLES[axes[1]].title, METRIC_STYLES[axes[0]].title
            plans[name] = ChartPlan("front", (axes,), f"Pareto front of {y} and {x}")
    plans["hypervolume"] = ChartPlan(
        "hypervolume", (), "Normalised hypervolume of the Pareto front by trial"
    )
    for metric in study.metric_names:
        title = f"Parameter importance (fANOVA) for {METRIC_STYLES[metric].title}"
        plans[f"importance_{metric}"] = ChartPlan("importance", (metric,), title)
    plans["layer_sparsity"] = ChartPlan(
        "layer_sparsity", (), "Achieved sparsity per layer of the Pareto-front trials (%)"
    )
    plans["compression"] = ChartPlan(
        "compression", (), "Accuracy at a size: the best found within each share"
    )
    return plans


def _varying_shared_params(trials: Sequence[FrozenTrial]) -> list[str]:
    """The parameters that every one of `trials` has and that take two values or more."""
    shared = set.intersection(*(set(trial.params) for trial in trials))
    return sorted(
        name for name in shared if len({repr(trial.params[name]) for trial in trials}) > 1
    )


def skipped_charts(study: optuna.Study) -> dict[str, str]:
    """The charts that cannot be drawn from `study` yet, each with the reason."""
    trials = complete_trials(study)
    if not trials:
        return {name: "the study has no complete trials" for name in chart_plans(study)}
    skipped = {}
    for index, metric in enumerate(study.metric_names):
        if len(trials) < 2:
            reason = "importances need at least 2 complete trials, the study has 1"
        elif len({trial.values[index] for trial in trials}) == 1:
            reason = f"every complete trial has the same {metric}"
        elif not _varying_shared_params(trials):
            reason = "no parameter that every complete trial has takes two values"
        else:
            continue
        skipped[f"importance_{metric}"] = reason
    if not any(feasible(trial) for trial in trials):
        broken = sorted({name for t in trials for name, v in t.constraints.items() if v > 0})
        skipped["layer_sparsity"] = (
            f"no complete trial meets the study's constraints (broken: {', '.join(broken)})"
        )
    elif not layer_sparsity(study).layers:
        skipped["layer_sparsity"] = "no Pareto-front trial records its sparsity_achieved"
    return skipped


def failure(error: Exception) -> str:
    """Why a chart was left out when defining or drawing it raised `error`."""
    return f"drawing it failed: {type(error).__name__}: {error}"


class Charts(dict[str, Chart]):
    """Charts by file name; `skipped` maps each chart left out to the reason."""

    def __init__(self, charts: dict[str, Chart], skipped: dict[str, str]):
        super().__init__(charts)
        self.skipped = skipped


def study_charts(study: optuna.Study, names: Iterable[str] | None = None) -> Charts:
    """The charts of `study` named in `names` (default: all) that can be defined, with
    `skipped` saying what was left out (it cannot be drawn yet, or defining it failed)."""
    plans = chart_plans(study)
    wanted = [name for name in plans if names is None or name in names]
    skipped = {name: reason for name, reason in skipped_charts(study).items() if name in wanted}
    charts = {}
    for name in wanted:
        if name in skipped:
            continue
        plan = plans[name]
        try:  # one chart is never worth ending a command or a dashboard
            charts[name] = DEFINITIONS[plan.kind](study, plan.title, *plan.args)
        except Exception as error:
            skipped[name] = failure(error)
    return Charts(charts, skipped)
