"""A `Chart` drawn with matplotlib: a static figure, written as a PNG.

A chart with a `z` axis is drawn flat: its x and z axes as position (z, the last one,
holds the maximised objective: better is up) and its y axis as colour.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import style
from matplotlib.axes import Axes
from matplotlib.axis import Axis as MatplotlibAxis
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter

from nas.report.charts.spec import Axis, Bars, Chart, Grid, Level, Points

STYLE = "ggplot"  # the style of Optuna's matplotlib charts, which these first followed
DPI = 130
MATPLOTLIB_MARKERS = {
    "circle": "o", "open circle": "o", "square": "s", "triangle-up": "^", "diamond": "D",
    "triangle-down": "v", "triangle-left": "<", "triangle-right": ">", "pentagon": "p",
    "hexagon": "h", "star": "*", "x": "x",
}  # fmt: skip
FLAT_COLOR_SCALE = "viridis"  # the colour of a flat chart's y axis
DARK_CELLS = 0.6  # grid cells above this share of the colour range get white text


def readable_log_ticks(axis: MatplotlibAxis) -> None:
    """Label a log axis at 1, 2 and 5 times powers of ten, as 200k, 1M, ..."""
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(EngFormatter(sep=""))
    axis.set_minor_formatter(NullFormatter())


def _style_axis(ax: Axes, letter: str, axis: Axis) -> None:
    """Title, scale, tick labels and range of the x or y axis (`letter`) of `ax`."""
    ticks = getattr(ax, f"{letter}axis")
    getattr(ax, f"set_{letter}label")(axis.title)
    if axis.log:
        getattr(ax, f"set_{letter}scale")("log")
        readable_log_ticks(ticks)
    if axis.percent:
        ticks.set_major_formatter(PercentFormatter(1.0))
    if axis.ticks:
        getattr(ax, f"set_{letter}ticks")(*zip(*axis.ticks, strict=True))
    if axis.range is not None:
        getattr(ax, f"set_{letter}lim")(*axis.range)
    if axis.integer:
        ticks.set_major_locator(MaxNLocator(integer=True))


def _label(points: Points) -> str:
    return points.name if points.legend else "_nolegend_"


def _annotate(ax: Axes, points: Points, y) -> None:
    """Write each point's label beside it, neighbours along x above and below: no overlap."""
    colors = points.label_colors or ["black"] * len(points.labels)
    rows = sorted(zip(points.x, y, points.labels, colors, strict=True), key=lambda row: row[0])
    for index, (x, y_value, text, color) in enumerate(rows):
        ax.annotate(
            text, (x, y_value), xytext=(6, 5 if index % 2 else -11), textcoords="offset points",
            fontsize="small", color=color,
        )  # fmt: skip


def _points(ax: Axes, points: Points, zorder: int, colors: ScalarMappable | None) -> None:
    marker = MATPLOTLIB_MARKERS.get(points.marker, "")
    face = "none" if points.marker == "open circle" else points.color
    common = {"color": points.color, "alpha": points.opacity, "label": _label(points)}
    y = points.y if colors is None else points.z
    if colors is not None and points.marker != "x":  # x markers have no face to colour
        ax.scatter(
            points.x, y, c=points.y, cmap=colors.cmap, norm=colors.norm, s=points.size**2,
            marker=marker, alpha=points.opacity, edgecolors=points.color, linewidths=1.5,
            label=_label(points), zorder=zorder,
        )  # fmt: skip
    elif points.error is not None:
        errors = [0.0 if math.isnan(error) else error for error in points.error]
        ax.errorbar(
            points.x, y, yerr=errors, fmt=marker or "none", ms=points.size, mfc=face, capsize=4,
            zorder=zorder, **common,
        )  # fmt: skip
    elif points.line:
        drawstyle = "steps-post" if points.line == "steps" else "default"
        ax.plot(
            points.x, y, drawstyle=drawstyle, marker=marker or None, ms=points.size, mfc=face,
            zorder=zorder, **common,
        )  # fmt: skip
    else:
        ax.scatter(
            points.x, y, s=points.size**2, marker=marker, facecolors=face, zorder=zorder,
            **common,
        )  # fmt: skip
    if points.labels is not None:
        _annotate(ax, points, y)


def _level(ax: Axes, level: Level, zorder: int) -> None:
    ax.axhline(
        level.y, color=level.color, linestyle=":" if level.dash else "-", linewidth=1.2,
        label=level.name, zorder=zorder,
    )  # fmt: skip


def _bars(ax: Axes, bars: Bars, zorder: int) -> None:
    rows = np.arange(len(bars.labels))
    ax.barh(rows, bars.values, color=bars.color, zorder=zorder)
    for row, value, text in zip(rows, bars.values, bars.texts, strict=True):
        ax.text(value, row, text, va="center", zorder=zorder)
    ax.set_yticks(rows, bars.labels)
    ax.set_xlim(0, 1.1 * max(max(bars.values, default=0), 1e-9))  # room for the texts


def _grid(ax: Axes, grid: Grid, zorder: int) -> None:
    """The heat map with its texts; missing cells hatched, with a legend entry above."""
    low, high = grid.range
    image = ax.imshow(
        np.ma.masked_invalid(grid.values), cmap=grid.scale, vmin=low, vmax=high, aspect="auto"
    )
    dark = low + DARK_CELLS * (high - low)
    for (row, column), text in np.ndenumerate(np.array(grid.texts, dtype=object)):
        white = grid.values[row, column] > dark
        ax.text(column, row, text, ha="center", va="center", color="white" if white else "black")
    missing = np.argwhere(np.isnan(grid.values))
    hatch = {"facecolor": grid.missing_color, "hatch": "//", "edgecolor": "white"}
    for row, column in missing:
        ax.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, linewidth=0, **hatch))
    if len(missing):
        swatch = Patch(label=grid.missing, **hatch)
        ax.legend(handles=[swatch], loc="lower left", bbox_to_anchor=(0, 1), frameon=False)
    ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(grid.rows)), grid.rows)
    ax.set_facecolor("white")
    ax.grid(False)
    ax.figure.colorbar(image, ax=ax, label=grid.color_title)


def _flat_colors(chart: Chart) -> ScalarMappable:
    """The colour scale of a flat chart's y axis, over the y values of all its points."""
    values = np.concatenate([series.y for series in chart.series if isinstance(series, Points)])
    norm = (LogNorm if chart.y.log else Normalize)(vmin=values.min(), vmax=values.max())
    return ScalarMappable(norm=norm, cmap=FLAT_COLOR_SCALE)


def _colour_bar(figure: Figure, ax: Axes, colors: ScalarMappable, axis: Axis) -> None:
    bar = figure.colorbar(colors, ax=ax, label=axis.title)
    ticks = bar.ax.yaxis
    if axis.percent:
        ticks.set_major_formatter(PercentFormatter(1.0))
    elif axis.log:
        readable_log_ticks(ticks)
    else:
        ticks.set_major_formatter(EngFormatter(sep=""))


def _titles(figure: Figure, ax: Axes, chart: Chart, caption: str, pad: float | None) -> None:
    """The title over the figure and `caption` in small print under it, or the title
    alone, `pad` points above the axes."""
    if caption:
        figure.suptitle(chart.title, fontsize=matplotlib.rcParams["axes.titlesize"])
        ax.set_title(caption, fontsize="small")
    else:
        ax.set_title(chart.title, pad=pad)


def matplotlib_figure(chart: Chart) -> Figure:
    """`chart` as a matplotlib figure in the `STYLE` (outside pyplot: nothing to close)."""
    with style.context(STYLE):
        figure = Figure(figsize=chart.size)
        ax = figure.add_subplot()
        flat = chart.z is not None
        colors = _flat_colors(chart) if flat else None
        for zorder, series in enumerate(chart.series, start=2):
            if isinstance(series, Points):
                _points(ax, series, zorder, colors)
            else:
                {Level: _level, Bars: _bars, Grid: _grid}[type(series)](ax, series, zorder)
        _style_axis(ax, "x", chart.x)
        _style_axis(ax, "y", chart.z if flat else chart.y)
        caption = chart.caption
        if flat:
            _colour_bar(figure, ax, colors, chart.y)
            caption = "; ".join(filter(None, [caption, f"colour: {chart.y.title}"]))
        above = ax.get_legend() is not None  # a grid's missing cells, over the axes
        if not above and ax.get_legend_handles_labels()[1]:
            below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.12), "ncols": 3}
            beside = {"loc": "upper left", "bbox_to_anchor": (1.01, 1)}
            ax.legend(title=chart.legend_title or None, **(below if flat else beside))
        _titles(figure, ax, chart, caption, pad=24 if above else None)
    return figure


def write_png(chart: Chart, path: Path) -> Path:
    """Write `chart` as a PNG at `path`; returns `path`."""
    with style.context(STYLE):
        matplotlib_figure(chart).savefig(path, dpi=DPI, bbox_inches="tight")
    return path
