"""Charts defined once (`nas.report.charts.spec`) and drawn twice: the interactive page and
the static image of a chart show the same series, titles and scales."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.axes import Axes

from nas.report.charts.files import write_chart
from nas.report.charts.html import plotly_figure
from nas.report.charts.png import matplotlib_figure
from nas.report.charts.spec import Axis, Chart, Level, Points
from nas.report.revalidation_chart import revalidation_chart
from nas.report.sensitivity_chart import sensitivity_chart
from nas.report.study_charts import FRONT_COLOR, study_charts
from tests.test_plots import CHARTS, study  # noqa: F401 (the fixture)

SEEDS = SimpleNamespace(
    column="seed", plural="retrains", judged="test_accuracy", recorded="recorded (search seed)",
    title="Test accuracy of the Pareto front",
)  # fmt: skip
SUMMARY = [
    {"trial": 7, "nonzero_params": 1_500, "test_accuracy": 0.79, "test_mean": 0.75,
     "test_std": 0.01, "verdict": "lucky"},
    {"trial": 2, "nonzero_params": 30_000, "test_accuracy": 0.96, "test_mean": 0.955,
     "test_std": math.nan, "verdict": ""},
]  # fmt: skip
RUNS = [
    {"trial": trial, "seed": seed, "test_accuracy": accuracy}
    for trial, seed, accuracy in [(7, 1, 0.74), (7, 2, 0.76), (2, 1, 0.955)]
]
Measured = SimpleNamespace


def sensitivity_points() -> list:
    drops = {"block1.conv": (0.0, 0.05), "head": (0.01, 0.2)}
    return [
        Measured(layer=layer, sparsity=s, accuracy=0.95 - d, accuracy_drop=d, nonzero_params=10)
        for layer, pair in drops.items()
        for s, d in zip((0.5, 0.9), pair, strict=True)
    ]


def page_legend(chart: Chart) -> set[str]:
    """The legend entries of the chart's page: named traces, and the lines' annotations."""
    figure = plotly_figure(chart)
    names = {trace.name for trace in figure.data if trace.showlegend}
    return names | {note.text for note in figure.layout.annotations}


def image_axes(chart: Chart) -> Axes:
    return matplotlib_figure(chart).axes[0]


def image_legend(chart: Chart) -> set[str]:
    legend = image_axes(chart).get_legend()
    return {text.get_text() for text in legend.get_texts()} if legend else set()


def all_charts(study) -> dict[str, Chart]:  # noqa: F811 (the fixture)
    charts = dict(study_charts(study))
    assert set(charts) == CHARTS
    charts["retrain_front"] = revalidation_chart(SUMMARY, RUNS, SEEDS, "test")
    charts["sensitivity"] = sensitivity_chart(sensitivity_points(), 0.95, 0.02, "caption")
    return charts


def test_the_page_and_the_image_of_every_chart_have_the_same_legend(study):  # noqa: F811
    for name, chart in all_charts(study).items():
        assert page_legend(chart) == image_legend(chart), name


def test_the_page_and_the_image_of_every_chart_have_the_same_titles_and_scales(study):  # noqa: F811
    for name, chart in all_charts(study).items():
        page = plotly_figure(chart).layout
        axes = image_axes(chart)
        image_titles = {axes.get_title(), axes.figure.get_suptitle()} - {""}
        page_titles = {page.title.text, page.title.subtitle.text} - {None}
        if chart.z is None:
            assert page.xaxis.title.text == axes.get_xlabel(), name
            assert page.yaxis.title.text == axes.get_ylabel(), name
            assert (page.xaxis.type == "log") == (axes.get_xscale() == "log"), name
            assert (page.yaxis.type == "log") == (axes.get_yscale() == "log"), name
            assert page_titles == image_titles, name
        else:  # flat: x and z as position, y as colour, said in the caption
            assert page.scene.zaxis.title.text == axes.get_ylabel(), name
            assert page_titles | {f"colour: {chart.y.title}"} == image_titles, name


def test_a_chart_is_written_as_a_page_and_an_image(tmp_path):
    chart = sensitivity_chart(sensitivity_points(), 0.95, 0.02, "caption")

    page, image = write_chart(chart, tmp_path, "sensitivity")

    assert (page.name, image.name) == ("sensitivity.html", "sensitivity.png")
    assert image.read_bytes().startswith(b"\x89PNG")
    assert '<script charset="utf-8" src="plotly.min.js"></script>' in page.read_text()
    assert (tmp_path / "plotly.min.js").exists()


def test_the_flat_image_of_a_3d_chart_colours_points_by_the_middle_axis():
    chart = Chart(
        "title", Axis("x"), Axis("colour"), (Points("p", [1, 2], [10, 20], z=[5, 6]),),
        z=Axis("up"),
    )  # fmt: skip
    axes = image_axes(chart)
    (points,) = axes.collections

    assert points.get_offsets().tolist() == [[1, 5], [2, 6]]
    assert points.get_array().tolist() == [10, 20]
    assert axes.figure.axes[1].get_ylabel() == "colour"  # the colour bar


def test_the_revalidation_chart_marks_each_run_the_spread_and_the_verdicts():
    chart = revalidation_chart(SUMMARY, RUNS, SEEDS, "test")
    one_run, mean, recorded = chart.series

    assert (one_run.name, mean.name, recorded.name) == (
        "one seed", "retrains: mean ± std", "recorded (search seed)",
    )  # fmt: skip
    assert list(one_run.x) == [1_500, 1_500, 30_000]
    assert list(mean.y) == [0.75, 0.955]
    assert list(recorded.labels) == ["#7 lucky", "#2"]
    assert list(recorded.label_colors) == [FRONT_COLOR, "black"]
    assert chart.x.log  # 1,500 to 30,000 parameters
    assert chart.y == Axis("test accuracy", percent=True)
    (spread,) = image_axes(chart).containers  # the error bars; a missing std as none
    bars = spread.lines[2][0].get_segments()
    assert [top[1] - bottom[1] for bottom, top in bars] == pytest.approx([0.02, 0.0])


def test_the_sensitivity_chart_has_a_line_per_layer_and_the_sparsities_as_ticks():
    chart = sensitivity_chart(sensitivity_points(), 0.95, 0.02, "caption")
    *lines, dense, caps = chart.series

    assert [line.name for line in lines] == ["block1.conv", "head"]
    assert len({line.marker for line in lines}) == len({line.color for line in lines}) == 2
    assert (dense, caps) == (
        Level(0.95, "dense (95.0%)"), Level(0.95 - 0.02, "dense − 2.0% (caps)", dash=True)
    )  # fmt: skip
    assert [label for _, label in chart.x.ticks] == ["50%", "90%"]
    np.testing.assert_allclose([value for value, _ in chart.x.ticks], [math.log10(2), 1.0])
    axes = image_axes(chart)
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["50%", "90%"]
    assert axes.get_legend().get_title().get_text() == "pruned layer"


@pytest.mark.parametrize("marker", ["circle", "open circle", "square", "x", ""])
def test_every_marker_draws_in_both_renderers(marker):
    line = "solid" if not marker else ""
    chart = Chart(
        "t", Axis("x"), Axis("y"), (Points("p", [1, 2], [3, 4], marker=marker, line=line),)
    )
    plotly_figure(chart)
    matplotlib_figure(chart)
