"""Objectives as a list in config: names and directions follow it everywhere."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nas.record.measures import metric
from nas.report.study_charts import METRIC_STYLES, front_axes
from nas.trial import objectives
from nas.trial.objectives import Objectives
from tests.conftest import assert_one_line_error, forked_nas

CUSTOM = ("agreement", "nonzero_params", "latency_ms")
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def test_directions_follow_the_names_and_bad_lists_are_refused():
    assert Objectives().directions == ("maximize", "minimize", "minimize")
    assert Objectives(CUSTOM).directions == ("maximize", "minimize", "minimize")
    assert Objectives(("macro_f1", "ece")).directions == ("maximize", "minimize")
    with pytest.raises(ValueError, match="unknown 'speed'"):
        Objectives(("accuracy", "speed"))
    with pytest.raises(ValueError, match="twice"):
        Objectives(("accuracy", "flops", "accuracy"))
    with pytest.raises(ValueError, match="at least two"):
        Objectives(("accuracy",))


def test_every_measure_that_may_be_an_objective_has_a_plot_style():
    assert set(METRIC_STYLES) == set(objectives.DIRECTIONS)


def test_a_measure_is_read_from_the_values_when_an_objective_else_from_the_user_attrs():
    trial = optuna.trial.create_trial(
        values=[0.9, 100, 2.5],
        distributions={},
        params={},
        user_attrs={"accuracy": 0.95},
    )
    assert metric(trial, "agreement", CUSTOM) == 0.9
    assert metric(trial, "latency_ms", CUSTOM) == 2.5
    assert metric(trial, "accuracy", CUSTOM) == 0.95
    assert metric(trial, "ece", CUSTOM, default=-1.0) == -1.0
    with pytest.raises(KeyError):
        metric(trial, "ece", CUSTOM)


def test_front_charts_pair_each_maximised_objective_with_each_minimised_one():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.set_metric_names(["accuracy", "nonzero_params", "flops"])
    assert front_axes(study) == {
        "front_3d": ("nonzero_params", "flops", "accuracy"),
        "front_accuracy_params": ("nonzero_params", "accuracy"),
        "front_accuracy_flops": ("flops", "accuracy"),
    }
    two = optuna.create_study(directions=["maximize", "maximize", "minimize", "minimize"])
    two.set_metric_names(["accuracy", "agreement", "nonzero_params", "latency_ms"])
    assert set(front_axes(two)) == {
        "front_accuracy_params",
        "front_accuracy_latency",
        "front_agreement_params",
        "front_agreement_latency",
    }


@pytest.mark.slow
def test_a_search_optimises_the_configured_objectives_and_reports_them(tmp_path):
    objectives_override = f"study.objectives=[{','.join(CUSTOM)}]"
    result = forked_nas("search", "+space=cnn", "+debug=smoke", objectives_override, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(
        study_name="cnn-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
    )
    assert study.metric_names == list(CUSTOM)
    assert [d.name.lower() for d in study.directions] == ["maximize", "minimize", "minimize"]
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    for trial in trials:
        agreement, nonzero, latency = trial.values
        assert 0 <= agreement <= 1 and nonzero > 0 and latency > 0
        assert "agreement" not in trial.user_attrs and "latency_ms" not in trial.user_attrs
        assert 0 <= trial.user_attrs["accuracy"] <= 1 and trial.user_attrs["flops"] > 0

    report = forked_nas("report", "+debug=smoke", "study.name=cnn-smoke", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "agreement" in report.stdout and "front_agreement_latency" in report.stdout
    drawn = {path.name for path in (tmp_path / "outputs" / "runs").glob("*/*.png")}
    assert {"front_3d.png", "front_agreement_params.png", "front_agreement_latency.png"} <= drawn

    other = forked_nas("search", "+space=cnn", "+debug=smoke", cwd=tmp_path)
    assert_one_line_error(other, "already exists with other objectives", "agreement (maximize)")
