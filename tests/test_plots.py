from __future__ import annotations

import math
import re
import warnings

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pytest
from matplotlib.patches import Rectangle
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from nas.report.charts import files as chart_files
from nas.report.charts.png import matplotlib_figure
from nas.report.front_quality import hypervolume, normalised_objectives
from nas.report.plots import front_figures, write_plots
from nas.report.study_charts import (
    ABSENT_LABEL,
    DEFINITIONS,
    front_3d_chart,
    front_chart,
    hypervolume_chart,
    layer_sparsity_chart,
    skipped_charts,
)
from nas.report.study_views import dense_reference, layer_sparsity, projection

CHARTS = {
    "compression",
    "front_3d",
    "front_accuracy_params",
    "front_accuracy_flops",
    "hypervolume",
    "importance_accuracy",
    "importance_nonzero_params",
    "importance_flops",
    "layer_sparsity",
}
IMPORTANCES = {"importance_accuracy", "importance_nonzero_params", "importance_flops"}
SPARSITY = FloatDistribution(0.0, 0.95, step=0.05)

# number: (accuracy, nonzero params, FLOPs, blocks, hidden width, achieved sparsity per layer)
TRIALS = {
    0: (0.95, 20_000, 300_000, 1, 64, {"block1.conv": 0.3, "hidden": 0.6, "head": 0.1}),
    2: (0.97, 12_000, 900_000, 3, 0, {"block1.conv": 0.1, "block2.conv": 0.5,
                                      "block3.conv": 0.75, "head": 0.2}),
    3: (0.90, 3_000, 200_000, 2, 0, {"block1.conv": 0.4, "block2.conv": 0.9, "head": 0.05}),
    4: (0.93, 5_000, 150_000, 2, 32, {"block1.conv": 0.0, "block2.conv": 0.7, "hidden": 0.8,
                                      "head": 0.3}),
    5: (0.85, 8_000, 400_000, 1, 0, {"block1.conv": 0.2, "head": 0.4}),
    6: (0.96, 30_000, 120_000, 1, 32, {"block1.conv": 0.65, "hidden": 0.55, "head": 0.15}),
    7: (0.80, 1_500, 500_000, 3, 0, {"block1.conv": 0.85, "block2.conv": 0.95,
                                     "block3.conv": 0.9, "head": 0.6}),
}  # fmt: skip
FRONT_3D = {0, 2, 3, 4, 6, 7}  # 5 is dominated by 3
FRONT_ACCURACY_PARAMS = {7, 3, 4, 2}
FRONT_ACCURACY_FLOPS = {6, 2}


def complete_trial(accuracy, params, flops, blocks, hidden, achieved) -> optuna.trial.FrozenTrial:
    """A finished trial as the search stores it: conditional params, user attrs, objectives."""
    arch = {"arch.blocks": blocks, "arch.kernel_size": 3, "arch.hidden": hidden}
    distributions = {
        "arch.blocks": IntDistribution(1, 3),
        "arch.kernel_size": CategoricalDistribution((3, 5)),
        "arch.hidden": CategoricalDistribution((0, 32, 64)),
    }
    channels = [16, 32, 8][:blocks]
    for i, width in enumerate(channels, start=1):
        arch[f"arch.block{i}.channels"] = width
        distributions[f"arch.block{i}.channels"] = CategoricalDistribution((8, 16, 32))
    target = {layer: round(ratio * 20) / 20 for layer, ratio in achieved.items()}
    for layer, ratio in target.items():
        arch[f"sparsity.{layer}"] = ratio
        distributions[f"sparsity.{layer}"] = SPARSITY
    fc = f" > fc {hidden}" if hidden else ""
    return optuna.trial.create_trial(
        params=arch,
        distributions=distributions,
        values=[accuracy, params, flops],
        user_attrs={
            "arch": f"conv {'-'.join(map(str, channels))} k3{fc} > head",
            "sparsity_target": target,
            "sparsity_achieved": achieved,
            "dense_params": 2 * params,
            "dense_flops": 2 * flops,
            "dense_accuracy": accuracy + 0.01,
            "test_accuracy": accuracy - 0.01,
        },
    )


def empty_study() -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names(["accuracy", "nonzero_params", "flops"])
    return study


@pytest.fixture
def study() -> optuna.Study:
    """Trials 0-7 as in TRIALS, trial 1 failed, then one still running."""
    study = empty_study()
    for number in range(8):
        if number == 1:
            study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
        else:
            study.add_trial(complete_trial(*TRIALS[number]))
    study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING))
    return study


def written_names(files, suffix: str) -> set[str]:
    return {path.stem for path in files if path.suffix == suffix}


@pytest.mark.slow
def test_write_plots_writes_every_chart_as_html_and_png(study, tmp_path):
    files = write_plots(study, tmp_path / "report", tmp_path)

    assert files.skipped == {}
    assert written_names(files, ".html") == CHARTS
    assert written_names(files, ".png") == CHARTS
    (script,) = tmp_path.glob("plotly-*.min.js")
    assert sorted(files) == sorted([*(tmp_path / "report").iterdir(), script])
    for path in files:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes().startswith(b"\x89PNG")
        if path.suffix == ".html":  # offline: plotly.js from the outputs folder, not a CDN
            html = path.read_text()
            assert f'<script charset="utf-8" src="../{script.name}"></script>' in html
            assert "cdn.plot.ly" not in html
    assert script.stat().st_size > 1_000_000


def test_two_reports_share_one_plotly_script(tmp_path, monkeypatch):
    monkeypatch.setattr(chart_files, "write_png", lambda chart, path: path)  # HTML is enough here
    study = empty_study()
    study.add_trial(complete_trial(*TRIALS[4]))

    first = write_plots(study, tmp_path / "runs" / "first", tmp_path / "runs")
    second = write_plots(study, tmp_path / "runs" / "second", tmp_path / "runs")

    scripts = list(tmp_path.rglob("*.js"))
    assert len(scripts) == 1
    for files in (first, second):
        page = next(path for path in files if path.suffix == ".html")
        (source,) = re.findall(r'<script charset="utf-8" src="([^"]+\.js)"', page.read_text())
        assert (page.parent / source).resolve() == scripts[0].resolve()


def test_sparsity_matrix_has_front_trials_by_accuracy_and_layers_in_network_order(study):
    matrix = layer_sparsity(study)

    assert matrix.trials == [2, 6, 0, 4, 3, 7]
    assert matrix.labels[:2] == ["#2 97.0%", "#6 96.0%"]
    # No trial has both block3.conv and hidden: still in network order.
    assert matrix.layers == ["block1.conv", "block2.conv", "block3.conv", "hidden", "head"]
    expected = [
        [100 * TRIALS[n][5].get(layer, math.nan) for n in matrix.trials] for layer in matrix.layers
    ]
    np.testing.assert_allclose(matrix.percent, expected)
    assert np.isnan(matrix.percent[3, 0])  # trial 2 has no hidden layer
    assert matrix.cell_texts()[3][:2] == ["", "55.0"]


def test_sparsity_heatmap_shows_the_matrix_with_absent_layers_grey(study):
    heatmap, absent = front_figures(study)["layer_sparsity"].data
    matrix = layer_sparsity(study)

    assert list(heatmap.y) == matrix.layers
    assert list(heatmap.x) == matrix.labels
    assert heatmap.z[3][0] is None
    assert heatmap.z[0][0] == pytest.approx(10.0)
    assert [list(row) for row in heatmap.text] == matrix.cell_texts()
    marked = np.array([[cell is not None for cell in row] for row in absent.z])
    np.testing.assert_array_equal(marked, np.isnan(matrix.percent))
    assert absent.showlegend and "absent" in absent.name


def test_sparsity_png_hatches_exactly_the_absent_layers_with_a_legend_entry(study):
    figure = matplotlib_figure(layer_sparsity_chart(study, "title"))
    ax = figure.axes[0]
    hatched = {
        (round(patch.get_y() + 0.5), round(patch.get_x() + 0.5))
        for patch in ax.patches
        if isinstance(patch, Rectangle) and patch.get_hatch()
    }
    assert hatched == {tuple(cell) for cell in np.argwhere(np.isnan(layer_sparsity(study).percent))}
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [ABSENT_LABEL]


def objectives(numbers, metrics):
    index = {"accuracy": 0, "nonzero_params": 1, "flops": 2}
    return sorted(tuple(TRIALS[n][index[m]] for m in metrics) for n in numbers)


@pytest.mark.parametrize(
    ("name", "metrics", "front"),
    [
        ("front_accuracy_params", ("nonzero_params", "accuracy"), FRONT_ACCURACY_PARAMS),
        ("front_accuracy_flops", ("flops", "accuracy"), FRONT_ACCURACY_FLOPS),
    ],
)
def test_each_projection_shows_its_own_front(study, name, metrics, front):
    assert {trial.number for trial in projection(study, metrics).best_trials} == front

    traces = {trace.name: trace for trace in front_figures(study)[name].data}
    dominated_trace, front_trace = traces["dominated"], traces["Pareto front"]
    step_trace = traces["Pareto front step"]
    assert sorted(zip(front_trace.x, front_trace.y, strict=True)) == objectives(front, metrics)
    assert sorted(zip(dominated_trace.x, dominated_trace.y, strict=True)) == objectives(
        set(TRIALS) - front, metrics
    )
    assert dominated_trace.marker.opacity < 1
    # the front joined in order of cost, each point holding until the next
    assert list(zip(step_trace.x, step_trace.y, strict=True)) == objectives(front, metrics)
    assert step_trace.line.shape == "hv"


def test_infeasible_trials_are_apart_from_the_front_in_the_page_and_the_image(study):
    over_budget = optuna.create_study(directions=study.directions)
    for trial in study.trials:
        if trial.state == TrialState.COMPLETE:  # a budget of 25,000 nonzero parameters
            trial.set_constraint("nonzero_params", trial.values[1] - 25_000)
        over_budget.add_trial(trial)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        over_budget.set_metric_names(study.metric_names)
    metrics = ("nonzero_params", "accuracy")

    traces = {
        trace.name: trace for trace in front_figures(over_budget)["front_accuracy_params"].data
    }
    image = matplotlib_figure(front_chart(over_budget, "title", metrics))
    points = {group.get_label(): group.get_offsets()[:, 0] for group in image.axes[0].collections}

    for drawn in ({name: trace.x for name, trace in traces.items()}, points):
        assert sorted(drawn["infeasible"]) == [30_000]  # trial 6, over budget
        assert sorted(drawn["Pareto front"]) == [1_500, 3_000, 5_000, 12_000]
        assert sorted(drawn["dominated"]) == [8_000, 20_000]


@pytest.mark.parametrize(
    ("metrics", "front"),
    [
        (("nonzero_params", "accuracy"), FRONT_ACCURACY_PARAMS),
        (("flops", "accuracy"), FRONT_ACCURACY_FLOPS),
    ],
)
def test_each_projection_png_joins_its_front_as_a_step_line(study, metrics, front):
    figure = matplotlib_figure(front_chart(study, "title", metrics))
    (step,) = figure.axes[0].get_lines()
    # the front in order of cost, each point holding until the next
    np.testing.assert_allclose(step.get_xydata(), objectives(front, metrics))
    assert step.get_drawstyle() == "steps-post"


@pytest.mark.slow
def test_the_3d_front_is_the_study_front_and_axes_are_log_where_values_span_decades(study):
    figure = front_figures(study)["front_3d"]
    dominated_trace, front_trace = figure.data
    metrics = ("nonzero_params", "flops", "accuracy")

    assert {trial.number for trial in study.best_trials} == FRONT_3D
    front_points = zip(front_trace.x, front_trace.y, front_trace.z, strict=True)
    assert sorted(front_points) == objectives(FRONT_3D, metrics)
    assert len(dominated_trace.x) == 1
    assert figure.layout.scene.xaxis.type == "log"  # 1,500 to 30,000 parameters
    assert figure.layout.scene.yaxis.type != "log"  # 120k to 900k FLOPs
    assert figure.layout.scene.zaxis.title.text == "validation accuracy"


def test_the_3d_front_png_is_flat_with_the_third_objective_as_colour(study):
    figure = matplotlib_figure(
        front_3d_chart(study, "title", ("nonzero_params", "flops", "accuracy"))
    )
    ax = figure.axes[0]
    front, dominated = (
        next(points for points in ax.collections if points.get_label() == label)
        for label in ("Pareto front of all three", "dominated")
    )

    assert ax.name == "rectilinear"
    assert figure.axes[1].get_ylabel() == "FLOPs per sample"  # the colour bar
    assert sorted(zip(*front.get_offsets().T, front.get_array(), strict=True)) == objectives(
        FRONT_3D, ("nonzero_params", "accuracy", "flops")
    )
    assert dominated.get_offsets().tolist() == [[8_000, 0.85]]
    assert list(dominated.get_array()) == [400_000]


def test_projection_keeps_trial_numbers_and_attrs(study):
    projected = projection(study, ("flops", "accuracy"))

    assert [t.state for t in projected.trials] == [t.state for t in study.trials]
    assert projected.trials[6].values == [120_000, 0.96]
    assert projected.trials[6].user_attrs == study.trials[6].user_attrs
    assert projected.trials[6].params == study.trials[6].params


def test_projection_takes_a_trial_read_while_another_worker_finishes_it(study):
    finishing = optuna.trial.create_trial(state=TrialState.RUNNING, values=[0.9, 100, 1000])
    study.add_trial(finishing)
    assert projection(study, ("flops", "accuracy")).trials[-1].values == [1000, 0.9]


def test_hypervolume_is_the_front_quality_benchmarks_normalised_one_from_zero(study):
    assert dense_reference(study) == (2 * 30_000, 2 * 900_000)  # the largest dense parent

    figure = front_figures(study)["hypervolume"]
    history = figure.data[0]
    first = 0.95 * (1 - 20_000 / 60_000) * (1 - 300_000 / 1_800_000)
    assert list(history.x) == [0, 2, 3, 4, 5, 6, 7]
    assert history.y[0] == pytest.approx(first)
    assert list(history.y) == sorted(history.y)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    final = hypervolume(normalised_objectives(complete, 60_000, 1_800_000))
    assert history.y[-1] == pytest.approx(final) and 0 < final < 1
    assert tuple(figure.layout.yaxis.range) == (0, 1)


def test_the_hypervolume_png_axis_starts_at_zero(study):
    figure = matplotlib_figure(hypervolume_chart(study, "title"))
    (ax,) = figure.axes
    (line,) = ax.get_lines()
    assert ax.get_ylim() == (0, 1)
    assert line.get_ydata()[-1] == pytest.approx(front_figures(study)["hypervolume"].data[0].y[-1])


def test_a_study_without_complete_trials_writes_nothing(tmp_path):
    study = empty_study()
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))

    files = write_plots(study, tmp_path, tmp_path)

    assert files == []
    assert set(files.skipped) == CHARTS
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_one_complete_trial_draws_all_but_importances(tmp_path):
    study = empty_study()
    study.add_trial(complete_trial(*TRIALS[4]))

    files = write_plots(study, tmp_path, tmp_path)

    assert set(files.skipped) == IMPORTANCES
    assert all("at least 2" in reason for reason in files.skipped.values())
    assert written_names(files, ".png") == CHARTS - IMPORTANCES
    assert written_names(files, ".html") == CHARTS - IMPORTANCES
    assert layer_sparsity(study).trials == [0]


def test_an_objective_without_variance_has_no_importance_chart():
    study = empty_study()
    study.add_trial(complete_trial(*TRIALS[2]))
    study.add_trial(complete_trial(0.97, *TRIALS[3][1:]))

    assert set(front_figures(study)) == CHARTS - {"importance_accuracy"}


def one_architecture_study() -> optuna.Study:
    """A study as `nas baseline method=two_stage` leaves it: one architecture, its dense
    trial (whose sparsity can only be 0) then two pruned ones, so that no parameter fANOVA
    weighs takes two values (`Encountered zero total variance in all trees`)."""
    study = empty_study()
    arch = {"arch.blocks": 2, "arch.hidden": 32}
    distributions = {
        "arch.blocks": IntDistribution(1, 3),
        "arch.hidden": CategoricalDistribution((0, 32, 64)),
    }
    dense = {"dense_params": 28_898, "dense_flops": 1_618_816}
    runs = [(0.0, 0.968, 28_898, 1_618_816), (0.5, 0.969, 14_494, 1_331_000),
            (0.86, 0.967, 3_999, 781_854)]  # fmt: skip
    for sparsity, accuracy, params, flops in runs:
        high = 0.99 if sparsity else 0.0  # the dense trial asks for sparsity 0 only
        study.add_trial(
            optuna.trial.create_trial(
                params={**arch, "sparsity.overall": sparsity},
                distributions={**distributions, "sparsity.overall": FloatDistribution(0.0, high)},
                values=[accuracy, params, flops],
                user_attrs={**dense, "sparsity_achieved": {"conv": sparsity}},
            )
        )
    return study


@pytest.mark.slow
def test_a_study_of_one_architecture_draws_all_but_importances(tmp_path):
    files = write_plots(one_architecture_study(), tmp_path / "report", tmp_path)

    assert set(files.skipped) == IMPORTANCES
    assert all("zero total variance" in reason for reason in files.skipped.values())
    assert written_names(files, ".png") == CHARTS - IMPORTANCES
    assert written_names(files, ".html") == CHARTS - IMPORTANCES


def test_a_study_whose_parameters_never_vary_has_no_importance_charts():
    study = empty_study()
    for accuracy, params, flops, *_ in TRIALS.values():
        study.add_trial(complete_trial(accuracy, params, flops, 1, 32, {"block1.conv": 0.5}))

    assert skipped_charts(study) == {
        name: "no parameter that every complete trial has takes two values" for name in IMPORTANCES
    }


def test_a_study_without_a_feasible_trial_says_so_for_the_sparsity_chart():
    study = empty_study()
    for accuracy, params, flops, blocks, hidden, achieved in TRIALS.values():
        trial = complete_trial(accuracy, params, flops, blocks, hidden, achieved)
        trial.set_constraint("min_accuracy_kept", 0.2)  # every trial below the floor
        study.add_trial(trial)

    assert skipped_charts(study)["layer_sparsity"] == (
        "no complete trial meets the study's constraints (broken: min_accuracy_kept)"
    )


def test_a_chart_whose_drawing_fails_is_skipped_with_the_error_and_the_rest_drawn(
    tmp_path, monkeypatch
):
    def broken(*args):
        raise RuntimeError("Encountered zero total variance in all trees.")

    monkeypatch.setitem(DEFINITIONS, "layer_sparsity", broken)
    study = empty_study()
    study.add_trial(complete_trial(*TRIALS[4]))

    files = write_plots(study, tmp_path / "report", tmp_path)

    assert files.skipped["layer_sparsity"] == (
        "drawing it failed: RuntimeError: Encountered zero total variance in all trees."
    )
    drawn = CHARTS - IMPORTANCES - {"layer_sparsity"}
    assert written_names(files, ".png") == written_names(files, ".html") == drawn
    assert plt.get_fignums() == []
