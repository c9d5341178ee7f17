"""`report retrain_seeds=N`: the front's candidates retrained from scratch with other seeds."""

from __future__ import annotations

import copy
import dataclasses
import math
import shutil

import optuna
import pytest
from hydra import compose, initialize_config_dir
from optuna.trial import TrialState

from nas.errors import UsageError
from nas.record.attrs import FINETUNE_EPOCHS
from nas.record.measures import metric, objective_names
from nas.studies.joint_search import run_search
from nas.studies.retrain import (
    Retrainer,
    Seeds,
    check_epochs,
    front_trials,
    lucky_verdict,
    retrain_count,
    retrain_front,
    retrain_seeds,
    summarise,
)
from nas.trial.dense_cache import arch_seed
from nas.trial.objectives import DEFAULT
from nas.trial.train import TrainSettings
from tests.conftest import (
    CONF_DIR,
    assert_a_second_report_reuses_every_run,
    assert_one_line_error,
    conf_defaults,
    forked_nas,
    report_rows,
)

DIRECTIONS = ["maximize", "minimize", "minimize"]


def smoke_config(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="config", overrides=["+space=cnn", "+debug=smoke", *overrides])


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """Two finished 4-trial smoke studies in one SQLite file: `lamp` (the cnn space's
    allocation rule, one overall sparsity) and `per_layer` (a ratio per layer). The second
    and third trial of each are siblings of the first, reusing its dense weights (with 4
    trials the budget leaves room for both siblings and one more architecture)."""
    folder = tmp_path_factory.mktemp("retrain")
    storage = f"sqlite:///{folder / 'nas.db'}"
    configs = {}
    for name, allocation in (("lamp", "lamp"), ("per_layer", "per_layer")):
        configs[name] = smoke_config(
            f"study.name={name}", f"study.storage={storage}", "study.n_trials=4",
            f"space.sparsity.allocation={allocation}", "space.sparsity.low=0.3",
        )  # fmt: skip
        run_search(configs[name], launch_dir=folder, run_dir=folder / "run")
    return storage, configs


def load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lamp", "per_layer"])
def test_retraining_with_the_studys_own_seed_reproduces_every_trial_exactly(searched, name):
    storage, configs = searched
    study = load(storage, name)
    retrainer = Retrainer.of_study(study, configs[name])
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4 and [t.user_attrs["dense_cached"] for t in trials][1:3] == [True] * 2
    for trial in trials:
        weight_seed, result = retrainer.run(trial, configs[name].seed)
        assert weight_seed == arch_seed(configs[name].seed, retrainer.candidate(trial).arch)
        assert result.test_accuracy == trial.user_attrs["test_accuracy"]
        names = objective_names(study)
        recorded = [metric(trial, name, names) for name in DEFAULT]
        assert [result.accuracy, result.nonzero_params, result.flops] == recorded
        assert result.sparsity_achieved == trial.user_attrs["sparsity_achieved"]
        assert result.arch == trial.user_attrs["arch"]


@pytest.mark.slow
def test_a_trial_whose_fine_tuning_early_exit_skipped_is_retrained_without_it(searched):
    storage, configs = searched
    study = load(storage, "per_layer")
    retrainer = Retrainer.of_study(study, configs["per_layer"])
    trial = study.trials[0]
    skipped = copy.copy(trial)
    skipped.user_attrs = {**trial.user_attrs, "finetune_skipped": True}
    _, plain = retrainer.run(trial, 1)
    _, early = retrainer.run(skipped, 1)
    assert not plain.finetune_skipped and early.finetune_skipped
    assert plain.train_epochs == 2  # smoke: 1 dense + 1 fine-tuning epoch
    assert early.dense_cached and early.train_epochs == 0  # the dense weights plain trained


@pytest.mark.slow
def test_a_trial_queued_with_its_own_fine_tuning_epochs_is_retrained_with_them(searched):
    storage, configs = searched
    study = load(storage, "per_layer")
    retrainer = Retrainer.of_study(study, configs["per_layer"])
    polish = copy.copy(study.trials[0])
    polish.user_attrs = {**polish.user_attrs, FINETUNE_EPOCHS.key: 3}
    _, result = retrainer.run(polish, 1)
    assert result.train_epochs == 1 + 3  # smoke: 1 dense epoch, then its own 3


@pytest.mark.slow
def test_n_seeds_give_n_rows_per_front_trial_other_seeds_and_a_rerun_reuses_them(
    searched, monkeypatch, capsys
):
    storage, configs = searched
    study = load(storage, "per_layer")
    retrainer = Retrainer.of_study(study, configs["per_layer"])
    front = [trial.number for trial in front_trials(study)]
    ran = []
    real_run = Retrainer.run

    def counted(self, trial, seed):
        ran.append((trial.number, seed))
        return real_run(self, trial, seed)

    monkeypatch.setattr(Retrainer, "run", counted)

    def seeds(count):
        return Seeds(retrainer.seed, count, retrainer.resolution)

    runs = retrain_front(study, retrainer, seeds(2))

    assert retrain_seeds(0, 2) == [1, 2]
    assert [(row["trial"], row["seed"]) for row in runs] == [(t, s) for t in front for s in (1, 2)]
    assert sorted(ran) == sorted((t, s) for t in front for s in (1, 2))
    assert not any(row["reused"] for row in runs)
    for row in runs:
        assert row["seed"] != configs["per_layer"].seed
        assert 0 <= row["test_accuracy"] <= 1 and 0 <= row["accuracy"] <= 1
    stored = study.user_attrs[f"retrain.trial{front[0]}"]
    assert set(stored) == {"1", "2"}

    capsys.readouterr()
    ran.clear()
    assert retrain_front(study, retrainer, seeds(2)) == [{**r, "reused": True} for r in runs]
    assert not ran and "retrain" not in capsys.readouterr().err  # nothing to run: no bar

    ran.clear()
    again = retrain_front(study, retrainer, seeds(3))  # seeds 1 and 2 stored: only seed 3 runs
    assert sorted(ran) == [(t, 3) for t in sorted(front)]
    assert [row["reused"] for row in again] == [s != 3 for _ in front for s in (1, 2, 3)]
    assert [r for r in again if r["seed"] != 3] == [{**r, "reused": True} for r in runs]

    ran.clear()
    other = dataclasses.replace(retrainer, settings_key="other training settings")
    retrain_front(study, other, seeds(1))  # stored runs of other settings are not reused
    assert sorted(ran) == [(t, 1) for t in sorted(front)]


def test_the_summary_flags_a_recorded_accuracy_far_above_its_retrains_as_lucky():
    study = optuna.create_study(directions=DIRECTIONS)
    for accuracy, nonzero, test in ((0.9, 1000, 0.95), (0.8, 500, 0.80)):
        attrs = {"test_accuracy": test, "dense_params": 2000, "arch": "conv 8 k3 > head"}
        study.add_trial(optuna.create_trial(values=[accuracy, nonzero, 1], user_attrs=attrs))
    runs = [
        {"trial": trial, "seed": seed, "test_accuracy": test, "accuracy": test}
        for trial, tests in ((0, (0.80, 0.82, 0.81)), (1, (0.78, 0.81, 0.83)))
        for seed, test in zip((1, 2, 3), tests, strict=True)
    ]
    lucky, plain = summarise(study, runs, Seeds(0, 3, resolution=0.01))
    assert (lucky["trial"], lucky["verdict"], lucky["retrains"]) == (0, "lucky", 3)
    assert lucky["test_mean"] == pytest.approx(0.81) and lucky["test_std"] == pytest.approx(0.01)
    assert (lucky["test_min"], lucky["test_max"]) == (0.80, 0.82)
    assert plain["verdict"] == ""


def test_the_lucky_rule():
    assert lucky_verdict(0.85, [0.80, 0.81, 0.82], 0.001) == "lucky"  # 4 std above
    assert lucky_verdict(0.75, [0.80, 0.81, 0.82], 0.001) == "unlucky"
    assert lucky_verdict(0.83, [0.80, 0.81, 0.82], 0.001) == ""  # 2 std: inside the band
    assert lucky_verdict(0.81, [0.80, 0.80, 0.80], 0.01) == ""  # one test sample is noise
    assert lucky_verdict(0.82, [0.80, 0.80, 0.80], 0.01) == "lucky"
    assert lucky_verdict(0.99, [0.50], 0.01) == ""  # one retrain: no spread to judge by
    assert lucky_verdict(0.99, [0.50, 0.51], 0.01) == ""  # two: too rough a spread
    assert lucky_verdict(0.30, [0.50, 0.51], 0.01) == ""


def test_below_three_seeds_the_report_says_why_it_gives_no_verdicts():
    assert Seeds(study_seed=0, count=2, resolution=0.01).verdict_line(0, 6) == (
        "no lucky/unlucky verdicts below 3 seeds: 2 seeds give too rough a spread"
    )
    assert (
        Seeds(study_seed=0, count=3, resolution=0.01)
        .verdict_line(1, 6)
        .endswith("; 1 of 6 flagged")
    )


@pytest.mark.parametrize("value", [-1, 1.5, "3", True, None])
def test_retrain_seeds_must_be_a_whole_number_at_least_zero(value):
    with pytest.raises(UsageError, match="retrain_seeds must be a whole number >= 0"):
        retrain_count(value)
    assert retrain_count(0) == 0 and retrain_count(3) == 3


def test_training_settings_that_the_trials_epochs_contradict_are_refused():
    def trial(epochs, cached, skipped=False):
        attrs = {"train_epochs": epochs, "dense_cached": cached, "finetune_skipped": skipped}
        return optuna.create_trial(values=[0.5, 10, 10], user_attrs=attrs)

    trials = [trial(5, False), trial(2, True), trial(3, False, skipped=True)]
    check_epochs(trials, TrainSettings(**conf_defaults("train", epochs=3, finetune_epochs=2)))
    with pytest.raises(UsageError, match=r"train.epochs=1 .* trained 5 epochs"):
        check_epochs(trials, TrainSettings(**conf_defaults("train", epochs=1, finetune_epochs=1)))


def test_a_trial_sliced_from_a_supernet_is_checked_by_its_fine_tuning_epochs_alone():
    attrs = {"train_epochs": 2.25, "recalibration_epochs": 0.25}
    attrs |= {"dense_cached": False, "dense_sliced": True}
    trials = [optuna.create_trial(values=[0.5, 10, 10], user_attrs=attrs)]
    check_epochs(trials, TrainSettings(**conf_defaults("train", epochs=3, finetune_epochs=2)))
    with pytest.raises(UsageError, match=r"train.finetune_epochs=1 .* trained 2.25 epochs"):
        check_epochs(trials, TrainSettings(**conf_defaults("train", epochs=3, finetune_epochs=1)))


@pytest.mark.slow
def test_a_trial_queued_with_its_own_fine_tuning_epochs_is_checked_by_them():
    attrs = {"train_epochs": 5.25, "recalibration_epochs": 0.25, FINETUNE_EPOCHS.key: 5}
    attrs |= {"dense_cached": False, "dense_sliced": True}
    polish = optuna.create_trial(values=[0.5, 10, 10], user_attrs=attrs)
    check_epochs([polish], TrainSettings(**conf_defaults("train", epochs=3, finetune_epochs=1)))
    del attrs[FINETUNE_EPOCHS.key]
    plain = optuna.create_trial(values=[0.5, 10, 10], user_attrs=attrs)
    with pytest.raises(UsageError, match=r"trained 5.25 epochs"):
        check_epochs([plain], TrainSettings(**conf_defaults("train", epochs=3, finetune_epochs=1)))


def test_training_settings_the_study_records_win_over_the_command_line(searched):
    storage, configs = searched
    study = load(storage, "lamp")
    recorded = study.user_attrs["train_config"]
    defaults = smoke_config("train.epochs=3", "train.finetune_epochs=2")
    settings = Retrainer.of_study(study, defaults).pipeline.settings
    assert (
        (settings.epochs, settings.finetune_epochs)
        == (
            recorded["epochs"],
            recorded["finetune_epochs"],
        )
        != (3, 2)
    )

    older = optuna.create_study(directions=DIRECTIONS)  # made before studies recorded them
    older.add_trials(study.get_trials())
    for key, value in study.user_attrs.items():
        if not key.endswith("_config") or key in ("space_config", "data_config"):
            older.set_user_attr(key, value)
    with pytest.raises(UsageError, match="give report the search's training overrides"):
        Retrainer.of_study(older, defaults)


@pytest.mark.slow
def test_report_retrains_the_front_writes_its_files_and_a_second_report_reuses_them(
    cli_study, tmp_path
):
    launch = tmp_path / "launch"
    shutil.copytree(cli_study, launch)
    result = forked_nas(
        "report", "study.name=cnn-smoke", "+debug=smoke", "retrain_seeds=2", cwd=launch
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "with seeds 1, 2 (the study's seed is 0)" in result.stdout
    assert "retrain: 100%" in result.stderr  # the progress bar

    run_dir, front, runs, summary = report_rows(launch, "retrain")
    assert [(r["trial"], r["seed"]) for r in runs] == [
        (row["trial"], seed) for row in front for seed in ("1", "2")
    ]
    assert [row["trial"] for row in summary] == [row["trial"] for row in front]
    for row in summary:
        assert row["retrains"] == "2" and row["verdict"] == ""
        assert not math.isnan(float(row["test_std"]))
    assert "no lucky/unlucky verdicts below 3 seeds: 2 seeds give too rough" in result.stdout
    for suffix in (".png", ".html"):
        assert (run_dir / f"retrain_front{suffix}").stat().st_size > 0
    assert f"({2 * len(front)} trained, 0 reused from the study)" in result.stdout

    assert_a_second_report_reuses_every_run(
        launch, "retrain_seeds=2", "retrain", run_dir, 2 * len(front), summary
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, fragments",
    [
        (
            ("study.name=cnn-smoke", "retrain_seeds=-1"),
            ("retrain_seeds must be a whole number >= 0",),
        ),
        (("study.name=cnn-smoke", "retrain_seeds=two"), ("got 'two'",)),
        (("study.name=empty", "retrain_seeds=2"), ("'empty' has no finished trial to retrain",)),
        (("study.name=cnn-smoke", "retrain_seeds=1.5"), ("retrain_seeds must be a whole number",)),
    ],
)
def test_bad_retrain_input_is_one_line_exit_2_and_leaves_the_study_as_it_was(
    cli_study, tmp_path, overrides, fragments
):
    launch = tmp_path / "launch"
    shutil.copytree(cli_study, launch)
    before = (launch / "outputs" / "smoke.db").read_bytes()
    fronts = set(launch.rglob("front.csv"))

    result = forked_nas("report", "+debug=smoke", *overrides, cwd=launch)

    assert_one_line_error(result, *fragments)
    assert (launch / "outputs" / "smoke.db").read_bytes() == before
    assert set(launch.rglob("front.csv")) == fronts, "a front was written despite the error"
