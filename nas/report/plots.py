"""A study's charts (`nas.report.study_charts`) as files: each chart as an interactive
plotly page `<name>.html` and a matplotlib image `<name>.png`, both drawn from its one
definition; and as plotly figures for the dashboard."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import optuna
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from nas.report.charts.files import write_chart
from nas.report.charts.html import plotly_figure
from nas.report.study_charts import failure, study_charts


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


def front_figures(study: optuna.Study, names: Iterable[str] | None = None) -> Figures:
    """The plots of `study` named in `names` (default: all) that can be drawn, as plotly
    figures by file name, with `skipped` saying what was left out and why."""
    charts = study_charts(study, names)
    figures, skipped = {}, dict(charts.skipped)
    for name, chart in charts.items():
        try:
            figures[name] = plotly_figure(chart)
        except Exception as error:  # one chart is never worth ending the dashboard
            skipped[name] = failure(error)
    return Figures(figures, skipped)


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
    charts = study_charts(study)
    if not charts:
        return PlotFiles([], charts.skipped)
    script = plotly_script(script_folder)
    source = Path(os.path.relpath(script, folder)).as_posix()
    paths, skipped = [script], dict(charts.skipped)
    for name, chart in charts.items():
        try:  # one chart is never worth ending a command
            paths += write_chart(chart, folder, name, source)
        except Exception as error:
            skipped[name] = failure(error)
    return PlotFiles(paths, skipped)
