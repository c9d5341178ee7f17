"""Charts of a study's complete trials, as interactive plotly HTML and static matplotlib PNGs.

- `front_3d`: every trial against all three objectives (when there are three), the
  Pareto front bright and the dominated trials faint: in 3-D as HTML; as PNG, the first
  two axes with the third as colour;
- `front_<maximised>_<minimised>` for each pair of a maximised and a minimised objective,
  e.g. `front_accuracy_params`, `front_accuracy_flops`: 2-D projections, each with the
  front of that projection joined as a step line;
- `hypervolume`: the normalised hypervolume of the front after each trial (see
  `normalised_study`), from 0 to 1;
- `importance_<metric>`: fANOVA importance of the parameters for each objective;
- `layer_sparsity`: achieved sparsity of each prunable layer of the Pareto-front trials,
  layers a trial lacks in grey.

The study's objectives must be named (`study.set_metric_names`) after measures of
`METRIC_STYLES`. Plots that cannot be drawn are left out, with the reason: those that
cannot be drawn yet (`skipped_plots`) and any whose drawing fails.
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from graphlib import TopologicalSorter
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import optuna
import optuna.visualization as plotly_vis
import optuna.visualization.matplotlib as matplotlib_vis
import plotly.graph_objects as go
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter
from optuna.exceptions import ExperimentalWarning
from optuna.importance import FanovaImportanceEvaluator
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from nas.report.front_quality import REFERENCE_POINT, normalised_objectives
from nas.trial import objectives


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
FRONT_COLOR = "#d62728"
DOMINATED_COLOR = "#7f7f7f"
DOMINATED_OPACITY = 0.3
INFEASIBLE_COLOR = "#ff7f0e"  # trials over study.max_nonzero_params / study.max_flops
SPARSITY_COLORSCALE = "Blues"
ABSENT_COLOR = "#d9d9d9"  # a layer the trial's architecture lacks
ABSENT_LABEL = "layer absent from the architecture"
DPI = 130
STYLE = "ggplot"  # the style Optuna's matplotlib charts use; the others follow it


class PlotFiles(list[Path]):
    """Paths of the files written; `skipped` maps each plot left out to the reason."""

    def __init__(self, paths: Iterable[Path] = (), skipped: dict[str, str] | None = None):
        super().__init__(paths)
        self.skipped = dict(skipped or {})


class Figures(dict[str, go.Figure]):
    """Plotly figures by plot name; `skipped` maps each plot left out to the reason."""

    def __init__(self, figures: dict[str, go.Figure], skipped: dict[str, str]):
        super().__init__(figures)
        self.skipped = skipped


class Chart(NamedTuple):
    """One plot: its kind (a key of the drawer tables), the drawer's arguments, its title."""

    kind: str
    args: tuple
    title: str


class AxisSpec(NamedTuple):
    """How to draw one objective on an axis."""

    title: str
    log: bool
    percent: bool


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


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning (its visualisations, `set_metric_names`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield


def _complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _metric_index(study: optuna.Study, metric: str) -> int:
    return study.metric_names.index(metric)


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


def _rewritten(
    study: optuna.Study,
    directions: Sequence[StudyDirection],
    values: Callable[[FrozenTrial], list[float] | None],
) -> optuna.Study:
    """An in-memory study with `directions` holding a copy of every trial of `study` (all
    states, so each keeps its number), with `values(trial)` as its objective values."""
    rewritten = optuna.create_study(directions=list(directions))
    for trial in study.get_trials(deepcopy=False):
        copied = copy.copy(trial)
        copied.values = values(trial)
        rewritten.add_trial(copied)
    return rewritten


def projection(study: optuna.Study, metrics: Sequence[str]) -> optuna.Study:
    """An in-memory copy of `study` with only the objectives `metrics`, in that order, and
    every trial under its own number: its `best_trials` are that projection's Pareto front."""
    indices = [_metric_index(study, metric) for metric in metrics]

    def projected_values(trial: FrozenTrial) -> list[float] | None:
        # not only COMPLETE trials have values: another worker may be finishing one
        return None if trial.values is None else [trial.values[i] for i in indices]

    projected = _rewritten(study, [study.directions[i] for i in indices], projected_values)
    with _quiet():
        projected.set_metric_names(list(metrics))
    return projected


def dense_reference(study: optuna.Study) -> tuple[int, int]:
    """The dense parameters and FLOPs of the largest dense model the complete trials of
    `study` trained (user attrs `dense_params`, `dense_flops`)."""
    trials = _complete_trials(study)
    return (
        max(trial.user_attrs["dense_params"] for trial in trials),
        max(trial.user_attrs["dense_flops"] for trial in trials),
    )


def normalised_study(study: optuna.Study) -> optuna.Study:
    """An in-memory copy of `study` whose complete trials have as objectives, all minimised,
    the front-quality benchmark's: 1 - accuracy, and nonzero parameters and FLOPs over
    `dense_reference`'s. Its hypervolume from `REFERENCE_POINT` (1, 1, 1) lies in [0, 1]."""
    reference = dense_reference(study)
    names = study.metric_names

    def normalised_values(trial: FrozenTrial) -> list[float] | None:
        if trial.state != TrialState.COMPLETE:
            return None
        return normalised_objectives([trial], *reference, names)[0].tolist()

    return _rewritten(study, [StudyDirection.MINIMIZE] * 3, normalised_values)


HYPERVOLUME_AXIS_TITLE = "normalised hypervolume"


def _hypervolume_caption(study: optuna.Study) -> str:
    params, flops = dense_reference(study)
    return (
        f"volume bounded by (1, 1, 1) in error, parameters / {params:,} and "
        f"FLOPs / {flops:,} (the largest dense model trained)"
    )


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
        return objectives.metric(trial, "accuracy", names)

    front = sorted(
        study.best_trials,
        key=lambda t: (-accuracy(t), objectives.metric(t, "nonzero_params", names)),
    )
    achieved = [trial.user_attrs.get("sparsity_achieved", {}) for trial in front]
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


def _charts(study: optuna.Study) -> dict[str, Chart]:
    """Every plot by file name, whether or not it can be drawn."""
    charts = {}
    for name, axes in front_axes(study).items():
        if len(axes) == 3:
            charts[name] = Chart("front_3d", (axes,), "Pareto front of all three objectives")
        else:
            title = (
                f"Pareto front of {METRIC_STYLES[axes[1]].title} and {METRIC_STYLES[axes[0]].title}"
            )
            charts[name] = Chart("front", (axes,), title)
    charts["hypervolume"] = Chart(
        "hypervolume", (), "Normalised hypervolume of the Pareto front by trial"
    )
    for metric in study.metric_names:
        title = f"Parameter importance (fANOVA) for {METRIC_STYLES[metric].title}"
        charts[f"importance_{metric}"] = Chart("importance", (metric,), title)
    charts["layer_sparsity"] = Chart(
        "layer_sparsity", (), "Achieved sparsity per layer of the Pareto-front trials (%)"
    )
    return charts


def _varying_shared_params(trials: Sequence[FrozenTrial]) -> list[str]:
    """The parameters that every one of `trials` has and that take two values or more."""
    shared = set.intersection(*(set(trial.params) for trial in trials))
    return sorted(
        name for name in shared if len({repr(trial.params[name]) for trial in trials}) > 1
    )


def skipped_plots(study: optuna.Study) -> dict[str, str]:
    """The plots that cannot be drawn from `study` yet, each with the reason."""
    trials = _complete_trials(study)
    if not trials:
        return {name: "the study has no complete trials" for name in _charts(study)}
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
    if not layer_sparsity(study).layers:
        skipped["layer_sparsity"] = "no Pareto-front trial records its sparsity_achieved"
    return skipped


def _spans_decades(values: Sequence[float]) -> bool:
    """Whether positive `values` span at least an order of magnitude (then a log axis helps)."""
    return len(values) > 0 and min(values) > 0 and max(values) >= 10 * min(values)


def _axis_specs(study: optuna.Study) -> list[AxisSpec]:
    """How to draw each objective of `study` (a projection) on an axis."""
    values = np.array([trial.values for trial in _complete_trials(study)])
    return [
        AxisSpec(
            title=METRIC_STYLES[metric].title,
            log=not METRIC_STYLES[metric].percent and _spans_decades(list(column)),
            percent=METRIC_STYLES[metric].percent,
        )
        for metric, column in zip(study.metric_names, values.T, strict=True)
    ]


def front_steps(projected: optuna.Study) -> np.ndarray:
    """The Pareto front of a 2-D `projection` (x minimised, y maximised) as rows (x, y) in
    increasing x: the corners of its step line, each point holding until the next."""
    points = np.array([trial.values for trial in projected.best_trials], dtype=float)
    points = points.reshape(-1, 2)  # also without a feasible trial
    return points[np.lexsort((points[:, 1], points[:, 0]))]


def _importance_options(study: optuna.Study, metric: str) -> dict:
    """Arguments of Optuna's `plot_param_importances` for objective `metric`."""
    index = _metric_index(study, metric)
    return {
        "evaluator": FanovaImportanceEvaluator(seed=0),
        "target": lambda trial: trial.values[index],
        "target_name": METRIC_STYLES[metric].title,
    }


# Plotly


def _plotly_axis(spec: AxisSpec) -> dict:
    axis = {"title": {"text": spec.title}}
    if spec.log:
        axis["type"] = "log"
    if spec.percent:
        axis["tickformat"] = ".1~%"
    return axis


def _plotly_front(study: optuna.Study, title: str, metrics: Sequence[str]) -> go.Figure:
    """Optuna's Pareto-front plot of the projection of `study` on `metrics`."""
    projected = projection(study, metrics)
    figure = plotly_vis.plot_pareto_front(projected, include_dominated_trials=True)
    # Optuna draws the dominated trials, the front, then trials over the user's budgets
    dominated, front, *infeasible = figure.data
    for trace in infeasible:
        trace.update(
            name="over budget", showlegend=True,
            marker={"color": INFEASIBLE_COLOR, "opacity": DOMINATED_OPACITY, "showscale": False},
        )  # fmt: skip
    dominated.update(
        name="dominated",
        showlegend=True,
        marker={"color": DOMINATED_COLOR, "opacity": DOMINATED_OPACITY, "showscale": False},
    )
    front.update(
        name="Pareto front", showlegend=True, marker={"color": FRONT_COLOR, "showscale": False}
    )
    if len(metrics) == 2:
        steps = front_steps(projected)
        figure.add_trace(
            go.Scatter(
                x=steps[:, 0], y=steps[:, 1], mode="lines", name="Pareto front step",
                line={"shape": "hv", "color": FRONT_COLOR}, showlegend=False, hoverinfo="skip",
            )
        )  # fmt: skip
    specs = _axis_specs(projected)
    axes = {f"{letter}axis": _plotly_axis(spec) for letter, spec in zip("xyz", specs, strict=False)}
    figure.update_layout(title=title, **(axes if len(metrics) == 2 else {"scene": axes}))
    return figure


def _plotly_hypervolume(study: optuna.Study, title: str) -> go.Figure:
    figure = plotly_vis.plot_hypervolume_history(normalised_study(study), REFERENCE_POINT)
    figure.update_layout(
        title={"text": title, "subtitle": {"text": _hypervolume_caption(study)}},
        xaxis_title="trial number",
        yaxis={"title": {"text": HYPERVOLUME_AXIS_TITLE}, "range": [0, 1]},
    )
    return figure


def _plotly_importance(study: optuna.Study, title: str, metric: str) -> go.Figure:
    figure = plotly_vis.plot_param_importances(study, **_importance_options(study, metric))
    figure.update_layout(
        title={"text": title, "subtitle": {"text": IMPORTANCE_CAPTION}},
        xaxis_title="importance",
        yaxis_title="parameter",
    )
    return figure


def _plotly_layer_sparsity(study: optuna.Study, title: str) -> go.Figure:
    matrix = layer_sparsity(study)
    heatmap = go.Heatmap(
        z=np.where(np.isnan(matrix.percent), None, matrix.percent),
        x=matrix.labels,
        y=matrix.layers,
        text=matrix.cell_texts(),
        texttemplate="%{text}",
        zmin=0,
        zmax=100,
        colorscale=SPARSITY_COLORSCALE,
        colorbar={"title": {"text": "sparsity (%)"}},
        hovertemplate="%{y} of trial %{x}: %{z:.1f}% zero<extra></extra>",
        xgap=2,
        ygap=2,
    )
    absent = np.isnan(matrix.percent)
    absent_cells = go.Heatmap(
        z=np.where(absent, 0, None),
        x=matrix.labels,
        y=matrix.layers,
        colorscale=[[0, ABSENT_COLOR], [1, ABSENT_COLOR]],
        showscale=False,
        name=ABSENT_LABEL,
        showlegend=bool(absent.any()),
        hovertemplate=f"%{{y}} of trial %{{x}}: {ABSENT_LABEL}<extra></extra>",
        xgap=2,
        ygap=2,
    )
    figure = go.Figure([heatmap, absent_cells])
    figure.update_layout(
        title=title,
        xaxis={"title": {"text": "Pareto-front trial (validation accuracy)"}, "type": "category"},
        yaxis={"title": {"text": "layer"}, "autorange": "reversed", "type": "category"},
    )
    return figure


PLOTLY_DRAWERS: dict[str, Callable[..., go.Figure]] = {
    "front": _plotly_front,
    "front_3d": _plotly_front,
    "hypervolume": _plotly_hypervolume,
    "importance": _plotly_importance,
    "layer_sparsity": _plotly_layer_sparsity,
}


def _draw_each(
    study: optuna.Study, names: Iterable[str] | None, draw: Callable[[str, Chart], object]
) -> tuple[dict[str, object], dict[str, str]]:
    """`draw(name, chart)` for each plot of `study` named in `names` (default: all) that
    can be drawn; returns what each drawing returned and, for each plot left out (it cannot
    be drawn yet, or drawing it failed), the reason."""
    charts = _charts(study)
    wanted = [name for name in charts if names is None or name in names]
    skipped = {name: reason for name, reason in skipped_plots(study).items() if name in wanted}
    drawn = {}
    for name in wanted:
        if name in skipped:
            continue
        try:
            with _quiet():
                drawn[name] = draw(name, charts[name])
        except Exception as error:  # one chart is never worth ending a command or a dashboard
            skipped[name] = f"drawing it failed: {type(error).__name__}: {error}"
    return drawn, skipped


def front_figures(study: optuna.Study, names: Iterable[str] | None = None) -> Figures:
    """The plots of `study` named in `names` (default: all) that can be drawn, as plotly
    figures by file name, with `skipped` saying what was left out and why."""
    figures, skipped = _draw_each(
        study,
        names,
        lambda name, chart: PLOTLY_DRAWERS[chart.kind](study, chart.title, *chart.args),
    )
    return Figures(figures, skipped)


# Matplotlib


def _style_axes(ax: Axes, specs: Sequence[AxisSpec]) -> None:
    """Log scale with readable ticks, or percent ticks, on the x and y axes of `ax` as
    `specs` say."""
    for letter, spec in zip("xy", specs, strict=True):
        axis = getattr(ax, f"{letter}axis")
        if spec.log:
            ax.set(**{f"{letter}scale": "log"})
            _readable_log_ticks(axis)
        if spec.percent:
            axis.set_major_formatter(PercentFormatter(1.0))


def _mpl_front(study: optuna.Study, title: str, metrics: Sequence[str]) -> Figure:
    """Optuna's matplotlib Pareto-front plot of the projection of `study` on the two
    `metrics`, its front joined as a step line."""
    projected = projection(study, metrics)
    specs = _axis_specs(projected)
    ax = matplotlib_vis.plot_pareto_front(
        projected, target_names=[spec.title for spec in specs], include_dominated_trials=True
    )
    for points in ax.collections:  # labelled by Optuna: "Trial", "Best Trial", "Infeasible..."
        if points.get_label() == "Best Trial":
            points.set(color=FRONT_COLOR, label="Pareto front", zorder=3)
        elif points.get_label().startswith("Infeasible"):
            points.set(color=INFEASIBLE_COLOR, alpha=DOMINATED_OPACITY, label="over budget")
        else:
            points.set(color=DOMINATED_COLOR, alpha=DOMINATED_OPACITY, label="dominated")
    steps = front_steps(projected)
    ax.step(steps[:, 0], steps[:, 1], where="post", color=FRONT_COLOR, zorder=2)
    _style_axes(ax, specs)
    ax.set_title(title)
    ax.figure.set_size_inches(8, 5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # outside, covering no point
    return ax.figure


def _colour_norm(spec: AxisSpec, values: np.ndarray) -> Normalize:
    """A log colour scale where `spec` is drawn on a log axis, else a linear one."""
    return (LogNorm if spec.log else Normalize)(vmin=values.min(), vmax=values.max())


def _mpl_front_3d(study: optuna.Study, title: str, metrics: Sequence[str]) -> Figure:
    """The complete trials of `study` against the first and last of the three `metrics`
    (x, y), coloured by the middle one; the Pareto front of all three ringed in red, trials
    over budget as orange crosses."""
    x_metric, colour_metric, y_metric = metrics
    projected = projection(study, (x_metric, y_metric, colour_metric))
    specs = _axis_specs(projected)
    trials = _complete_trials(projected)
    values = np.array([trial.values for trial in trials], dtype=float)
    front = {trial.number for trial in projected.best_trials}
    feasible = np.array([all(v <= 0 for v in trial.constraints.values()) for trial in trials])
    on_front = np.array([trial.number in front for trial in trials])
    norm = _colour_norm(specs[2], values[:, 2])
    figure, ax = plt.subplots(figsize=(8, 5.5))
    groups = {
        "dominated": (feasible & ~on_front, {"s": 28, "alpha": 0.45}),
        "Pareto front of all three": (
            on_front, {"s": 70, "edgecolors": FRONT_COLOR, "linewidths": 1.8, "zorder": 3}
        ),
    }  # fmt: skip
    for label, (rows, style) in groups.items():
        points = ax.scatter(
            values[rows, 0], values[rows, 1], c=values[rows, 2], cmap="viridis", norm=norm,
            label=label, **style,
        )  # fmt: skip
    over = ~feasible
    if over.any():
        ax.scatter(values[over, 0], values[over, 1], marker="x", color=INFEASIBLE_COLOR,
                   label="over budget")  # fmt: skip
    colourbar = figure.colorbar(points, ax=ax, label=specs[2].title)
    if specs[2].percent:
        colourbar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    elif specs[2].log:
        _readable_log_ticks(colourbar.ax.yaxis)
    else:
        colourbar.ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    _style_axes(ax, specs[:2])
    ax.set_xlabel(specs[0].title)
    ax.set_ylabel(specs[1].title)
    _set_titles(ax, title, f"colour: {specs[2].title}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=3)
    return figure


def _readable_log_ticks(axis: Axis) -> None:
    """Label a log axis at 1, 2 and 5 times powers of ten, as 200k, 1M, ..."""
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(EngFormatter(sep=""))
    axis.set_minor_formatter(NullFormatter())


def _set_titles(ax: Axes, title: str, caption: str) -> None:
    """`title` over the figure, `caption` in small print under it."""
    ax.figure.suptitle(title, fontsize=plt.rcParams["axes.titlesize"])
    ax.set_title(caption, fontsize="small")


def _mpl_hypervolume(study: optuna.Study, title: str) -> Figure:
    ax = matplotlib_vis.plot_hypervolume_history(normalised_study(study), REFERENCE_POINT)
    _set_titles(ax, title, _hypervolume_caption(study))
    ax.set_xlabel("trial number")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(HYPERVOLUME_AXIS_TITLE)
    ax.set_ylim(0, 1)
    ax.figure.set_size_inches(8, 5)
    return ax.figure


def _mpl_importance(study: optuna.Study, title: str, metric: str) -> Figure:
    ax = matplotlib_vis.plot_param_importances(study, **_importance_options(study, metric))
    ax.set_title("", loc="left")  # Optuna's title
    _set_titles(ax, title, IMPORTANCE_CAPTION)
    ax.set_xlabel("importance")
    ax.set_ylabel("parameter")
    ax.get_legend().remove()  # its one entry repeats the title
    ax.figure.set_size_inches(8, 0.45 * len(ax.get_yticks()) + 1.8)
    return ax.figure


def _mpl_layer_sparsity(study: optuna.Study, title: str) -> Figure:
    matrix = layer_sparsity(study)
    n_layers, n_trials = matrix.percent.shape
    figure, ax = plt.subplots(figsize=(max(6.0, 0.75 * n_trials + 3), 0.5 * n_layers + 2.5))
    cmap = plt.get_cmap(SPARSITY_COLORSCALE)
    image = ax.imshow(
        np.ma.masked_invalid(matrix.percent), cmap=cmap, vmin=0, vmax=100, aspect="auto"
    )
    for (row, column), text in np.ndenumerate(np.array(matrix.cell_texts(), dtype=object)):
        dark = matrix.percent[row, column] > 60
        ax.text(column, row, text, ha="center", va="center", color="white" if dark else "black")
    absent = np.argwhere(np.isnan(matrix.percent))
    for row, column in absent:
        ax.add_patch(
            Rectangle((column - 0.5, row - 0.5), 1, 1, facecolor=ABSENT_COLOR, hatch="//",
                      edgecolor="white", linewidth=0, label=ABSENT_LABEL)
        )  # fmt: skip
    if len(absent):
        swatch = Patch(facecolor=ABSENT_COLOR, hatch="//", edgecolor="white", label=ABSENT_LABEL)
        ax.legend(handles=[swatch], loc="lower left", bbox_to_anchor=(0, 1), frameon=False)
    ax.set_xticks(range(n_trials), matrix.labels, rotation=45, ha="right")
    ax.set_yticks(range(n_layers), matrix.layers)
    ax.set_xlabel("Pareto-front trial (validation accuracy)")
    ax.set_ylabel("layer")
    ax.set_facecolor("white")
    ax.grid(False)
    ax.set_title(title, pad=24)  # room for the legend of absent layers
    figure.colorbar(image, ax=ax, label="achieved sparsity (%)")
    return figure


MATPLOTLIB_DRAWERS: dict[str, Callable[..., Figure]] = {
    "front": _mpl_front,
    "front_3d": _mpl_front_3d,
    "hypervolume": _mpl_hypervolume,
    "importance": _mpl_importance,
    "layer_sparsity": _mpl_layer_sparsity,
}


def _save_png(study: optuna.Study, chart: Chart, path: Path) -> Path:
    """Draw `chart` of `study` with matplotlib into `path`; returns `path`."""
    try:
        with plt.style.context(STYLE):
            figure = MATPLOTLIB_DRAWERS[chart.kind](study, chart.title, *chart.args)
            figure.savefig(path, dpi=DPI, bbox_inches="tight")
    finally:
        plt.close("all")  # also what a failed drawing left open
    return path


def front_pngs(study: optuna.Study, folder: Path) -> PlotFiles:
    """Draw every plot that can be drawn from `study` with matplotlib into `folder` as
    `<name>.png`; returns the paths, with `skipped` saying what was left out and why."""
    plt.switch_backend("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    paths, skipped = _draw_each(
        study, None, lambda name, chart: _save_png(study, chart, folder / f"{name}.png")
    )
    return PlotFiles(paths.values(), skipped)


def plotly_script(script_folder: Path) -> Path:
    """The plotly.js bundle of the installed plotly in `script_folder`, written there unless
    it already is; returns its path."""
    path = script_folder / f"plotly-{get_plotlyjs_version()}.min.js"
    if not path.exists():
        script_folder.mkdir(parents=True, exist_ok=True)
        path.write_text(get_plotlyjs(), encoding="utf-8")
    return path


def write_plots(study: optuna.Study, folder: Path, script_folder: Path) -> PlotFiles:
    """Write every plot that can be drawn from `study` into `folder`, as `<name>.html`
    (interactive) and `<name>.png`; returns the paths (with the plotly.js bundle's when a
    page needs it), with `skipped` saying what was left out and why.

    The HTML pages load one plotly.js bundle kept in `script_folder` (see `plotly_script`)
    by a relative path, so that every report under it shares one copy: they work offline,
    as long as the two folders keep their places.
    """
    folder.mkdir(parents=True, exist_ok=True)
    figures = front_figures(study)
    pages = []
    if figures:
        script = plotly_script(script_folder)
        source = Path(os.path.relpath(script, folder)).as_posix()
        for name, figure in figures.items():
            path = folder / f"{name}.html"
            figure.write_html(str(path), include_plotlyjs=source)
            pages.append(path)
        pages.append(script)
    pngs = front_pngs(study, folder)
    return PlotFiles([*pages, *pngs], {**figures.skipped, **pngs.skipped})
