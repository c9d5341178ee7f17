"""What a chart shows, whatever draws it: its axes, its series and its titles.

`nas.report.charts.html` draws a `Chart` with plotly, `nas.report.charts.png` with
matplotlib; a chart's definition says nothing about either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Marker shapes every renderer knows.
MARKERS = (
    "circle", "open circle", "square", "triangle-up", "diamond", "triangle-down",
    "triangle-left", "triangle-right", "pentagon", "hexagon", "star", "x",
)  # fmt: skip
# Colours for categories (matplotlib's and plotly's tab10, and tab20 for more).
TAB10 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
TAB20 = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
    "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
)  # fmt: skip


@dataclass(frozen=True)
class Axis:
    """One axis: its title; a log scale; values that are shares, shown in percent; fixed
    ticks as (value, label) pairs; a fixed range; ticks at whole numbers only (in the
    static image: an interactive page picks its ticks as it zooms)."""

    title: str
    log: bool = False
    percent: bool = False
    ticks: tuple[tuple[float, str], ...] = ()
    range: tuple[float, float] | None = None
    integer: bool = False


@dataclass(frozen=True)
class Points:
    """A series of points drawn as markers, a line through them, or both.

    `z` is the third coordinate, on a chart with a `z` axis. `marker` is one of
    `MARKERS` ("" for none); `line` is "" (none), "solid", or "steps" (each y holding
    until the next x). `error` draws symmetric error bars on y. `labels` are written
    beside the points (in `label_colors`, default black); `hover` is shown when the
    pointer rests on a point (interactive renderers only). Without `legend`, the series
    has no legend entry.
    """

    name: str
    x: Sequence[float]
    y: Sequence[float]
    z: Sequence[float] | None = None
    color: str = TAB10[0]
    opacity: float = 1.0
    size: float = 6.0
    marker: str = "circle"
    line: str = ""
    error: Sequence[float] | None = None
    labels: Sequence[str] | None = None
    label_colors: Sequence[str] | None = None
    hover: Sequence[str] | None = None
    legend: bool = True


@dataclass(frozen=True)
class Level:
    """A horizontal line across the chart at `y`, named `name`; dotted with `dash`."""

    y: float
    name: str
    dash: bool = False
    color: str = "black"


@dataclass(frozen=True)
class Bars:
    """Horizontal bars, one per label from the bottom up, each with its text at its end and
    `hover` on it."""

    labels: Sequence[str]
    values: Sequence[float]
    texts: Sequence[str]
    hover: Sequence[str]
    color: str = TAB10[0]


@dataclass(frozen=True)
class Grid:
    """A heat map: `values` (rows top to bottom, columns left to right) coloured on
    colour scale `scale` over `range`, titled `color_title`, each cell with its text and
    `hover`. NaN cells are `missing`: drawn in `missing_color` with a legend entry."""

    rows: Sequence[str]
    columns: Sequence[str]
    values: np.ndarray
    texts: Sequence[Sequence[str]]
    hover: Sequence[Sequence[str]]
    scale: str
    range: tuple[float, float]
    color_title: str
    missing: str
    missing_color: str


Series = Points | Level | Bars | Grid


@dataclass(frozen=True)
class Chart:
    """A chart: `series` drawn in order over axes `x` and `y`, and `z` when the points
    have a third coordinate (drawn in depth, or as colour where the page is flat), with
    its title, a caption under it and the legend's title. `size` is the static image's,
    in inches."""

    title: str
    x: Axis
    y: Axis
    series: tuple[Series, ...]
    z: Axis | None = None
    caption: str = ""
    legend_title: str = ""
    size: tuple[float, float] = (8.0, 5.0)
