"""A chart written as its two files: an interactive page and a static image."""

from __future__ import annotations

from pathlib import Path

from nas.report.charts.html import write_html
from nas.report.charts.png import write_png
from nas.report.charts.spec import Chart


def write_chart(chart: Chart, folder: Path, name: str, plotly_js: str = "directory") -> list[Path]:
    """Write `chart` into `folder` as `<name>.html`, loading plotly.js as `plotly_js` says
    (`include_plotlyjs` of plotly's `write_html`; by default a `plotly.min.js` beside it),
    and as `<name>.png`; returns both paths."""
    return [
        write_html(chart, folder / f"{name}.html", plotly_js),
        write_png(chart, folder / f"{name}.png"),
    ]
