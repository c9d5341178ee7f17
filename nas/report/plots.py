"""Charts of a study's complete trials, as interactive plotly HTML and static matplotlib PNGs.

- `front_3d`: every trial against all three objectives (when there are three), the
  Pareto front bright and the dominated trials faint;
- `front_<maximised>_<minimised>` for each pair of a maximised and a minimised objective,
  e.g. `front_accuracy_params`, `front_accuracy_flops`: 2-D projections, each with the
  front of that projection;
- `hypervolume`: the hypervolume of the front after each trial (see `hypervolume_reference`);
- `importance_<metric>`: fANOVA importance of the parameters for each objective;
- `layer_sparsity`: achieved sparsity of each prunable layer of the Pareto-front trials.

The study's objectives must be named (`study.set_metric_names`) after measures of
`METRIC_STYLES`. Plots that cannot be drawn yet are left out; `skipped_plots` says why.
"""

from __future__ import annotations

import contextlib
import copy
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
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter
from optuna.exceptions import ExperimentalWarning
from optuna.importance import FanovaImportanceEvaluator
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.trial import objectives


class MetricStyle(NamedTuple):
    """How a measure is named on an axis, in short, in file names, and whether it is a share
    drawn in percent."""

    title: str
    short: str
    tag: str
    percent: bool


# Every measure of nas.trial.objectives.DIRECTIONS.
METRIC_STYLES = {
    "accuracy": MetricStyle("validation accuracy", "accuracy", "accuracy", True),
    "nonzero_params": MetricStyle("nonzero parameters", "parameters", "params", False),
    "flops": MetricStyle("FLOPs per sample", "FLOPs", "flops", False),
    "agreement": MetricStyle("agreement with the dense parent", "agreement", "agreement", True),
    "macro_f1": MetricStyle("macro F1", "macro F1", "macro_f1", True),
    "worst_class_accuracy": MetricStyle("worst class accuracy", "worst class", "worst", True),
    "kl_divergence": MetricStyle("KL divergence from the dense parent", "KL", "kl", False),
    "ece": MetricStyle("expected calibration error", "ECE", "ece", True),
    "latency_ms": MetricStyle("latency per batch (ms)", "latency", "latency", False),
}
# The reference point of a minimised objective is this times the largest value seen.
HYPERVOLUME_MARGIN = 1.1
IMPORTANCE_CAPTION = "parameters that every complete trial has; share of the objective's variance"
FRONT_COLOR = "#d62728"
DOMINATED_COLOR = "#7f7f7f"
DOMINATED_OPACITY = 0.3
INFEASIBLE_COLOR = "#ff7f0e"  # trials over study.max_nonzero_params / study.max_flops
SPARSITY_COLORSCALE = "Blues"
DPI = 130
STYLE = "ggplot"  # the style Optuna's matplotlib charts use; the others follow it


class PlotFiles(list[Path]):
    """Paths of the files written; `skipped` maps each plot left out to the reason."""

    def __init__(self, paths: Iterable[Path] = (), skipped: dict[str, str] | None = None):
        super().__init__(paths)
        self.skipped = dict(skipped or {})


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


def projection(study: optuna.Study, metrics: Sequence[str]) -> optuna.Study:
    """An in-memory copy of `study` with only the objectives `metrics`, in that order, and
    every trial under its own number: its `best_trials` are that projection's Pareto front."""
    indices = [_metric_index(study, metric) for metric in metrics]
    projected = optuna.create_study(directions=[study.directions[i] for i in indices])
    with _quiet():
        projected.set_metric_names(list(metrics))
    for trial in study.get_trials(deepcopy=False):  # all states, to keep the numbers
        copied = copy.copy(trial)
        if trial.values is not None:  # not only COMPLETE: another worker may be finishing it
            copied.values = [trial.values[i] for i in indices]
        projected.add_trial(copied)
    return projected


def hypervolume_reference(study: optuna.Study) -> list[float]:
    """The hypervolume reference point of `study` (which needs a complete trial), in the
    objectives' own units and order.

    A maximised objective (accuracy) is at 0, its worst value; a minimised one at
    `HYPERVOLUME_MARGIN` times the largest value seen, so that every trial adds volume.
    Optuna 5 negates maximised objectives and their reference together, so it takes the
    point as is.
    """
    values = np.array([trial.values for trial in _complete_trials(study)])
    return [
        0.0 if direction == StudyDirection.MAXIMIZE else HYPERVOLUME_MARGIN * float(column.max())
        for direction, column in zip(study.directions, values.T, strict=True)
    ]


def _hypervolume_caption(study: optuna.Study) -> str:
    reference = ", ".join(
        f"{METRIC_STYLES[metric].title} {value:,.0f}"
        if value >= 100
        else f"{METRIC_STYLES[metric].title} {value:.3g}"
        for metric, value in zip(study.metric_names, hypervolume_reference(study), strict=True)
    )
    return f"reference point: {reference}"


def _hypervolume_axis_title(study: optuna.Study) -> str:
    return f"hypervolume ({' × '.join(METRIC_STYLES[m].short for m in study.metric_names)})"


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
            title = "Pareto front of all three objectives"
        else:
            title = (
                f"Pareto front of {METRIC_STYLES[axes[1]].title} and {METRIC_STYLES[axes[0]].title}"
            )
        charts[name] = Chart("front", (axes,), title)
    charts["hypervolume"] = Chart("hypervolume", (), "Hypervolume of the Pareto front by trial")
    for metric in study.metric_names:
        title = f"Parameter importance (fANOVA) for {METRIC_STYLES[metric].title}"
        charts[f"importance_{metric}"] = Chart("importance", (metric,), title)
    charts["layer_sparsity"] = Chart(
        "layer_sparsity", (), "Achieved sparsity per layer of the Pareto-front trials (%)"
    )
    return charts


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
    specs = _axis_specs(projected)
    axes = {f"{letter}axis": _plotly_axis(spec) for letter, spec in zip("xyz", specs, strict=False)}
    figure.update_layout(title=title, **(axes if len(metrics) == 2 else {"scene": axes}))
    return figure


def _plotly_hypervolume(study: optuna.Study, title: str) -> go.Figure:
    figure = plotly_vis.plot_hypervolume_history(study, hypervolume_reference(study))
    figure.update_layout(
        title={"text": title, "subtitle": {"text": _hypervolume_caption(study)}},
        xaxis_title="trial number",
        yaxis_title=_hypervolume_axis_title(study),
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
    figure = go.Figure(heatmap)
    figure.update_layout(
        title=title,
        xaxis={"title": {"text": "Pareto-front trial (validation accuracy)"}, "type": "category"},
        yaxis={"title": {"text": "layer"}, "autorange": "reversed", "type": "category"},
    )
    return figure


PLOTLY_DRAWERS: dict[str, Callable[..., go.Figure]] = {
    "front": _plotly_front,
    "hypervolume": _plotly_hypervolume,
    "importance": _plotly_importance,
    "layer_sparsity": _plotly_layer_sparsity,
}


def front_figures(study: optuna.Study) -> dict[str, go.Figure]:
    """Every plot that can be drawn from `study`, as a plotly figure, by file name."""
    skipped = skipped_plots(study)
    with _quiet():
        return {
            name: PLOTLY_DRAWERS[chart.kind](study, chart.title, *chart.args)
            for name, chart in _charts(study).items()
            if name not in skipped
        }


# Matplotlib


def _mpl_front(study: optuna.Study, title: str, metrics: Sequence[str]) -> Figure:
    """Optuna's matplotlib Pareto-front plot of the projection of `study` on `metrics`."""
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
    for letter, spec in zip("xyz", specs, strict=False):
        axis = getattr(ax, f"{letter}axis")
        if spec.log:
            ax.set(**{f"{letter}scale": "log"})
            _readable_log_ticks(axis)
        if spec.percent:
            axis.set_major_formatter(PercentFormatter(1.0))
        axis.labelpad = 12 if len(metrics) == 3 else 4
    ax.set_title(title)
    if len(metrics) == 3:
        for points in ax.collections:
            points.set_depthshade(False)  # shading far points would hide the dominated ones
        ax.figure.set_size_inches(8, 7)
        ax.legend(loc="upper left")
    else:
        ax.figure.set_size_inches(8, 5)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # outside, covering no point
    return ax.figure


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
    ax = matplotlib_vis.plot_hypervolume_history(study, hypervolume_reference(study))
    _set_titles(ax, title, _hypervolume_caption(study))
    ax.set_xlabel("trial number")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(_hypervolume_axis_title(study))
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
    ax.set_xticks(range(n_trials), matrix.labels, rotation=45, ha="right")
    ax.set_yticks(range(n_layers), matrix.layers)
    ax.set_xlabel("Pareto-front trial (validation accuracy)")
    ax.set_ylabel("layer")
    ax.set_facecolor("white")
    ax.grid(False)
    ax.set_title(title)
    figure.colorbar(image, ax=ax, label="achieved sparsity (%)")
    return figure


MATPLOTLIB_DRAWERS: dict[str, Callable[..., Figure]] = {
    "front": _mpl_front,
    "hypervolume": _mpl_hypervolume,
    "importance": _mpl_importance,
    "layer_sparsity": _mpl_layer_sparsity,
}


def front_pngs(study: optuna.Study, folder: Path) -> PlotFiles:
    """Draw every plot that can be drawn from `study` with matplotlib into `folder` as
    `<name>.png`; returns the paths, with `skipped` saying what was left out and why."""
    plt.switch_backend("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    files = PlotFiles(skipped=skipped_plots(study))
    for name, chart in _charts(study).items():
        if name in files.skipped:
            continue
        path = folder / f"{name}.png"
        with plt.style.context(STYLE), _quiet():
            figure = MATPLOTLIB_DRAWERS[chart.kind](study, chart.title, *chart.args)
            figure.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(figure)
        files.append(path)
    return files


def write_plots(study: optuna.Study, folder: Path) -> PlotFiles:
    """Write every plot that can be drawn from `study` into `folder`, as `<name>.html`
    (interactive) and `<name>.png`; returns the paths, with `skipped` saying what was left
    out and why.

    The HTML files load one `plotly.min.js` written beside them (they work offline, as long
    as they stay in the same folder as it).
    """
    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for name, figure in front_figures(study).items():
        path = folder / f"{name}.html"
        figure.write_html(str(path), include_plotlyjs="directory")
        pages.append(path)
    if pages:
        pages.append(folder / "plotly.min.js")
    pngs = front_pngs(study, folder)
    return PlotFiles([*pages, *pngs], pngs.skipped)
