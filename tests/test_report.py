"""`python -m nas report`: the front of an existing study as a table, files and plots."""

from __future__ import annotations

import json

import optuna
import pytest

from nas.errors import UsageError
from nas.report.front import front_rows, report_front
from nas.search.storage import existing_storage, load_named_study, made_by_nas
from tests.conftest import assert_one_line_error, forked_nas
from tests.test_plots import CHARTS, TRIALS, complete_trial, empty_study


@pytest.mark.slow
def test_report_writes_the_front_and_every_plot_of_an_existing_study(tmp_path):
    searched = forked_nas("search", "+space=cnn", "+debug=smoke", "study.n_trials=4", cwd=tmp_path)
    assert searched.returncode == 0, searched.stderr
    result = forked_nas("report", "+debug=smoke", "study.name=cnn-smoke", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "compression" in result.stdout and "Pareto front of study 'cnn-smoke'" in result.stdout
    at_size = result.stdout.split("Accuracy at a size:")[1].splitlines()
    assert [line.split()[0] for line in at_size[2:7]] == ["0.5%", "1.0%", "2.0%", "5.0%", "10.0%"]

    (run_dir,) = [p.parent for p in (tmp_path / "outputs" / "runs").glob("*/front_3d.html")]
    assert not (run_dir / "nas.log").exists(), "report logs nothing: no empty log file"
    front = json.loads((run_dir / "front.json").read_text())
    assert front and all(row["compression"] >= 1 for row in front)
    for name in CHARTS:
        for suffix in (".html", ".png"):
            assert (run_dir / f"{name}{suffix}").stat().st_size > 0, name + suffix

    again = forked_nas("report", "+debug=smoke", "study.name=cnn-smoke", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(list((tmp_path / "outputs" / "runs").glob("*/front_3d.html"))) == 2
    assert len(list(tmp_path.rglob("plotly*.js"))) == 1  # both reports load the same copy


@pytest.mark.slow
def test_report_without_a_database_is_one_line_and_creates_nothing(tmp_path):
    assert_one_line_error(forked_nas("report", cwd=tmp_path), "no study database at")
    assert not (tmp_path / "outputs" / "nas.db").exists()


@pytest.mark.slow
def test_report_of_an_unknown_study_lists_the_studies_there(tmp_path):
    searched = forked_nas("search", "+space=cnn", "+debug=smoke", "study.n_trials=1", cwd=tmp_path)
    assert searched.returncode == 0, searched.stderr
    result = forked_nas("report", "+debug=smoke", "study.name=nope", cwd=tmp_path)
    assert_one_line_error(result, "no study 'nope' in study.storage; studies there: 'cnn-smoke'")


def two_studies(folder) -> str:
    """The URL of `folder/outputs/nas.db` holding the empty studies `cnn` and `cnn-lamp`."""
    (folder / "outputs").mkdir()
    url = f"sqlite:///{folder}/outputs/nas.db"
    for name in ("cnn", "cnn-lamp"):
        optuna.create_study(study_name=name, storage=url)
    return url


def test_no_study_name_lists_the_studies_of_the_storage(tmp_path):
    storage = optuna.storages.RDBStorage(two_studies(tmp_path))
    with pytest.raises(UsageError) as error:
        load_named_study(storage, None)
    assert str(error.value) == (
        f"no study.name given; studies in sqlite:///{tmp_path}/outputs/nas.db: cnn, cnn-lamp"
    )


def test_a_storage_whose_supernet_trains_holds_one_study_for_the_commands(tmp_path):
    url = f"sqlite:///{tmp_path}/nas.db"
    for name in ("cnn", "cnn:supernet-claim-0"):
        optuna.create_study(study_name=name, storage=url)
    assert load_named_study(existing_storage(url), None).study_name == "cnn"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["report", "export"])
def test_a_command_without_study_name_lists_the_studies(tmp_path, command):
    two_studies(tmp_path)
    result = forked_nas(command, cwd=tmp_path)
    assert_one_line_error(result, f"no study.name given; studies in sqlite:///{tmp_path}")


def test_compression_is_dense_over_nonzero_parameters():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    attrs = {"test_accuracy": 0.9, "dense_params": 1000, "arch": "conv 8 k3 > head"}
    study.add_trial(optuna.create_trial(values=[0.91, 250, 5000], user_attrs=attrs))
    (row,) = front_rows(study)
    assert row["compression"] == 4.0 and row["sparsity"] == 0.75


def test_a_study_without_finished_trials_gets_one_line_and_no_empty_front(tmp_path, capsys):
    study = empty_study()
    report_front(study, tmp_path)
    out = capsys.readouterr().out
    assert out.strip() == f"study {study.study_name!r} has no finished trial yet: no front to show"
    assert not list(tmp_path.iterdir())  # no front files without a front


def test_a_front_without_feasible_trials_says_so(tmp_path, capsys):
    study = empty_study()
    trial = complete_trial(*TRIALS[0])
    trial.set_constraint("min_accuracy_kept", 0.1)
    study.add_trial(trial)
    report_front(study, tmp_path)
    out = capsys.readouterr().out
    assert "(0 of 1 finished trials):\n(no feasible trial)\n" in out


def test_the_printed_front_names_the_infeasible_trials_it_leaves_off(tmp_path, capsys):
    study = empty_study()
    limits = {  # trial 7 below the accuracy floor, 6 over a parameter budget, 5 both
        5: {"min_accuracy_kept": 0.01, "max_nonzero_params": 3_000.0},
        6: {"min_accuracy_kept": -0.1, "max_nonzero_params": 25_000.0},
        7: {"min_accuracy_kept": 0.05},
    }
    for number in (0, 3, 5, 6, 7):
        trial = complete_trial(*TRIALS[number])
        for key, value in limits.get(number, {"min_accuracy_kept": -0.2}).items():
            trial.set_constraint(key, value)
        study.add_trial(trial)
    report_front(study, tmp_path)
    out = capsys.readouterr().out
    assert {row["trial"] for row in front_rows(study)} == {0, 1}  # trials 0 and 3, renumbered
    assert "Pareto front of study" in out and "(2 of 5 finished trials):" in out
    assert (
        "3 finished trials are infeasible, left off the front: min_accuracy_kept (trials 2, 4), "
        "max_nonzero_params (trials 2, 3)\n"
    ) in out


def test_a_study_nas_did_not_make_is_refused_by_the_commands_that_read_one(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    plain = optuna.create_study(study_name="plain", storage=url, directions=["maximize"] * 2)
    plain.optimize(lambda t: (t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), 2)
    with pytest.raises(UsageError) as error:
        made_by_nas(load_named_study(existing_storage(url), "plain"))
    assert str(error.value) == (
        "study 'plain' was not made by nas: it has 2 unnamed objectives, where a nas study "
        "has accuracy, nonzero_params and flops (or names its own)"
    )
    legacy = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    assert made_by_nas(legacy) is legacy  # nas studies before objectives were named
