"""A `Chart` drawn with plotly: an interactive figure, written as an HTML page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from nas.report.charts.spec import Axis, Bars, Chart, Grid, Level, Points

PLOTLY_MARKERS = {
    "circle": "circle", "open circle": "circle-open", "square": "square",
    "triangle-up": "triangle-up", "diamond": "diamond", "triangle-down": "triangle-down",
    "triangle-left": "triangle-left", "triangle-right": "triangle-right",
    "pentagon": "pentagon", "hexagon": "hexagon", "star": "star", "x": "x",
}  # fmt: skip
PERCENT_FORMAT = ".1~%"
HOVER = "%{hovertext}<extra></extra>"  # the hover text alone, without the trace's name


def _axis(axis: Axis) -> dict:
    layout: dict = {"title": {"text": axis.title}}
    if axis.log:
        layout["type"] = "log"
    if axis.percent:
        layout["tickformat"] = PERCENT_FORMAT
    if axis.ticks:
        layout["tickvals"] = [value for value, _ in axis.ticks]
        layout["ticktext"] = [label for _, label in axis.ticks]
    if axis.range is not None:
        layout["range"] = list(axis.range)
    return layout


def _hover(texts) -> list[str]:
    return [text.replace("\n", "<br>") for text in texts]


def _hover_rows(rows) -> list[list[str]]:
    return [_hover(row) for row in rows]


def _points(figure: go.Figure, points: Points, chart: Chart) -> None:
    modes = [("lines", points.line), ("markers", points.marker), ("text", points.labels)]
    trace: dict = {
        "x": list(points.x), "y": list(points.y), "name": points.name,
        "mode": "+".join(mode for mode, wanted in modes if wanted),
        "showlegend": points.legend,
    }  # fmt: skip
    if points.marker:
        trace["marker"] = {
            "color": points.color, "size": points.size,
            "symbol": PLOTLY_MARKERS[points.marker],
        }  # fmt: skip
    if points.line:
        trace["line"] = {"color": points.color}
        trace["opacity"] = points.opacity
    elif points.marker:
        trace["marker"]["opacity"] = points.opacity
    if points.hover is not None:
        trace.update(hovertext=_hover(points.hover), hovertemplate=HOVER)
    if chart.z is not None:
        figure.add_trace(go.Scatter3d(z=list(points.z), **trace))
        return
    if points.line == "steps":
        trace["line"]["shape"] = "hv"
    if points.labels is not None:
        colors = points.label_colors or ["black"] * len(points.labels)
        trace.update(
            text=list(points.labels), textposition="top right", textfont={"color": list(colors)}
        )
    if points.error is not None:
        trace["error_y"] = {"type": "data", "array": list(points.error)}
    figure.add_trace(go.Scatter(**trace))


def _level(figure: go.Figure, level: Level, chart: Chart) -> None:
    line = {"color": level.color, "dash": "dot" if level.dash else "solid"}
    figure.add_hline(level.y, line=line, annotation_text=level.name)


def _bars(figure: go.Figure, bars: Bars, chart: Chart) -> None:
    figure.add_trace(
        go.Bar(
            x=list(bars.values), y=list(bars.labels), orientation="h", text=list(bars.texts),
            textposition="outside", cliponaxis=False, marker={"color": bars.color},
            hovertext=_hover(bars.hover), hovertemplate=HOVER, showlegend=False,
        )
    )  # fmt: skip


def _grid(figure: go.Figure, grid: Grid, chart: Chart) -> None:
    """The grid's values as one heat map, its missing cells as a second one on top."""
    missing = np.isnan(grid.values)
    cells = {"x": list(grid.columns), "y": list(grid.rows), "xgap": 2, "ygap": 2}
    figure.add_trace(
        go.Heatmap(
            z=np.where(missing, None, grid.values), text=grid.texts, texttemplate="%{text}",
            zmin=grid.range[0], zmax=grid.range[1], colorscale=grid.scale,
            colorbar={"title": {"text": grid.color_title}},
            hovertext=_hover_rows(grid.hover), hovertemplate=HOVER, **cells,
        )
    )  # fmt: skip
    grey = [[0, grid.missing_color], [1, grid.missing_color]]
    figure.add_trace(
        go.Heatmap(
            z=np.where(missing, 0, None), colorscale=grey, showscale=False,
            name=grid.missing, showlegend=bool(missing.any()),
            hovertext=_hover_rows(grid.hover), hovertemplate=HOVER, **cells,
        )
    )  # fmt: skip
    figure.update_layout(
        xaxis={"type": "category"}, yaxis={"type": "category", "autorange": "reversed"}
    )


DRAW = {Points: _points, Level: _level, Bars: _bars, Grid: _grid}


def plotly_figure(chart: Chart) -> go.Figure:
    """`chart` as a plotly figure: its series in order, three axes in a 3-D scene."""
    figure = go.Figure()
    for series in chart.series:
        DRAW[type(series)](figure, series, chart)
    axes = {"xaxis": _axis(chart.x), "yaxis": _axis(chart.y)}
    if chart.z is not None:
        axes = {"scene": {**axes, "zaxis": _axis(chart.z)}}
    title: dict = {"text": chart.title}
    if chart.caption:
        title["subtitle"] = {"text": chart.caption}
    figure.update_layout(title=title, legend={"title": {"text": chart.legend_title}}, **axes)
    return figure


def write_html(chart: Chart, path: Path, plotly_js: str) -> Path:
    """Write `chart` as an interactive page at `path`, loading plotly.js as `plotly_js`
    says (`include_plotlyjs` of plotly's `write_html`); returns `path`."""
    plotly_figure(chart).write_html(str(path), include_plotlyjs=plotly_js)
    return path
