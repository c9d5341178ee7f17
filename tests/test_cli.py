"""The real command in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess

import optuna
import pytest

from tests.conftest import TRIAL_USER_ATTRS, nas_command
from tests.conftest import run_nas as nas


@pytest.mark.slow
def test_search_end_to_end_then_rerun_only_reports(tmp_path):
    result = nas("search", "+space=cnn", "+debug=smoke", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Pareto front of study 'cnn-smoke'" in result.stdout

    study = optuna.load_study(
        study_name="cnn-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
    )
    assert study.metric_names == ["accuracy", "nonzero_params", "flops"]
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 2
    for trial in trials:
        assert len(trial.values) == 3
        assert 0.0 <= trial.values[0] <= 1.0
        sibling = {"sibling_of", "density_factor"} if "sibling_of" in trial.user_attrs else set()
        assert set(trial.user_attrs) == TRIAL_USER_ATTRS | sibling
        assert any(name.startswith("sparsity.") for name in trial.params)
    assert len(list((tmp_path / "outputs" / "runs").glob("*/front.csv"))) == 1
    (log,) = (tmp_path / "outputs" / "runs").glob("*/nas.log")
    assert "study 'cnn-smoke': 0 of 2 trials finished" in log.read_text()

    again = nas("search", "space=cnn", "+debug=smoke", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already holds 2 finished trials" in again.stdout + again.stderr
    assert len(optuna.load_study(study_name="cnn-smoke", storage=study._storage).trials) == 2


def test_help_lists_the_commands_and_spaces(tmp_path):
    result = nas("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "search" in result.stdout and "cnn" in result.stdout


@pytest.mark.slow
def test_search_help_shows_hydra_config_groups(tmp_path):
    result = nas("search", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "== Configuration groups ==" in result.stdout
    assert "space: cnn" in result.stdout


def test_cfg_job_prints_the_composed_config(tmp_path):
    result = nas("search", "+space=cnn", "train.epochs=7", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "_target_: search_spaces.cnn.CNNSpace" in result.stdout
    assert "epochs: 7" in result.stdout


def test_console_script_is_installed(tmp_path):
    script = shutil.which("nas")
    assert script, "the `nas` console script is not on PATH"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and "commands:" in result.stdout


@pytest.mark.slow
def test_hydra_full_error_shows_the_traceback_of_bad_input(tmp_path):
    result = subprocess.run(
        nas_command("search", "+space=cnn", "study.n_trials=0"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "UsageError: study.n_trials must be a whole number >= 1, got 0" in result.stderr
