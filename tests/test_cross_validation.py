"""`report cv_folds=K`: the front's candidates run on K folds of the study's training pool."""

from __future__ import annotations

import math
import shutil
from types import SimpleNamespace

import optuna
import pytest
import torch

from nas.data.splits import Splits, fold_splits
from nas.errors import UsageError
from nas.studies.cross_validation import Folds, fold_count, outside_verdict
from nas.studies.retrain import MEASURES, Retrainer, front_trials, retrain_front, summarise
from nas.trial.dense_cache import DenseCache
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings
from tests.conftest import (
    assert_a_second_report_reuses_every_run,
    assert_one_line_error,
    conf_defaults,
    forked_nas,
    report_rows,
)

DIRECTIONS = ["maximize", "minimize", "minimize"]


def numbered_splits() -> Splits:
    """10 training, 4 validation and 3 test samples, each image holding its own number."""

    def images(numbers: range) -> torch.Tensor:
        return torch.tensor(list(numbers), dtype=torch.float32).view(-1, 1, 1, 1)

    return Splits(
        train_x=images(range(10)), train_y=torch.arange(10) % 2,
        val_x=images(range(10, 14)), val_y=torch.arange(10, 14) % 2,
        test_x=images(range(100, 103)), test_y=torch.zeros(3, dtype=torch.int64),
        n_classes=2, augment="crop_flip",
    )  # fmt: skip


def numbers(images: torch.Tensor) -> list[int]:
    return images.flatten().int().tolist()


def test_the_folds_validation_parts_partition_the_pool_and_each_trains_on_the_rest():
    splits = numbered_splits()
    folds = [fold_splits(splits, 3, fold, split_seed=0) for fold in range(3)]
    validation = [numbers(fold.val_x) for fold in folds]
    assert sorted(sum(validation, [])) == list(range(14))  # disjoint, and together the pool
    assert sorted(map(len, validation)) == [4, 5, 5]
    for fold, held_out in zip(folds, validation, strict=True):
        assert sorted(numbers(fold.train_x) + held_out) == list(range(14))
        assert fold.train_y.tolist() == [n % 2 for n in numbers(fold.train_x)]  # labels follow
        assert fold.val_y.tolist() == [n % 2 for n in held_out]
        assert fold.test_x is splits.test_x and fold.test_y is splits.test_y
        assert (fold.n_classes, fold.augment) == (2, "crop_flip")


def test_the_folds_are_fixed_by_the_split_seed():
    splits = numbered_splits()

    def held_out(seed: int) -> list[list[int]]:
        return [numbers(fold_splits(splits, 3, fold, seed).val_x) for fold in range(3)]

    assert held_out(0) == held_out(0)
    assert held_out(0) != held_out(1)
    assert held_out(0) != [list(range(0, 5)), list(range(5, 10)), list(range(10, 14))]  # shuffled


@pytest.mark.parametrize("folds, fold", [(1, 0), (15, 0), (3, 3), (3, -1)])
def test_a_fold_outside_the_pool_is_refused(folds, fold):
    with pytest.raises(ValueError, match="must be in"):
        fold_splits(numbered_splits(), folds, fold, split_seed=0)


def test_the_outside_rule():
    folds = [0.80, 0.84, 0.82]
    assert outside_verdict(0.85, folds) == "outside"
    assert outside_verdict(0.79, folds) == "outside"
    assert outside_verdict(0.84, folds) == "" and outside_verdict(0.80, folds) == ""  # bounds
    assert outside_verdict(0.81, folds) == ""
    assert outside_verdict(0.5, []) == ""


@pytest.mark.parametrize("value", [-1, 1, 1.5, "3", True, None])
def test_cv_folds_must_be_zero_or_a_whole_number_at_least_two(value):
    with pytest.raises(UsageError, match=r"cv_folds must be 0 \(off\) or a whole number >= 2"):
        fold_count(value)
    assert fold_count(0) == 0 and fold_count(2) == 2 and fold_count(10) == 10


def retrainer_on(splits: Splits) -> Retrainer:
    """A retrainer of `splits` whose pipeline cannot train (`Retrainer.run` is replaced)."""
    pipeline = TrialPipeline(
        space=None, splits=splits, pruning=None, settings=TrainSettings(**conf_defaults("train")),
        device=torch.device("cpu"), dense_cache=DenseCache(3),
    )  # fmt: skip
    return Retrainer(pipeline, seed=7, settings_key="settings", split_seed=5)


def test_more_folds_than_samples_are_refused():
    retrainer = retrainer_on(numbered_splits())
    assert Folds.of(retrainer, 14).values == list(range(14))
    with pytest.raises(UsageError, match="cv_folds=15 is more than the 14 training and valid"):
        Folds.of(retrainer, 15)


def test_a_fold_trains_on_its_split_with_the_studys_seed_and_a_dense_cache_of_its_own():
    splits = numbered_splits()
    retrainer = retrainer_on(splits)
    varied, seed = Folds(3).setting(retrainer, 1)
    assert seed == 7
    assert numbers(varied.pipeline.splits.val_x) == numbers(fold_splits(splits, 3, 1, 5).val_x)
    assert varied.pipeline.dense_cache is not retrainer.pipeline.dense_cache
    assert varied.pipeline.dense_cache.size == 3
    assert retrainer.pipeline.splits is splits  # the study's own retrainer is left as it was


def small_study(*trials: tuple[float, int, float]) -> optuna.Study:
    """A study of finished trials (validation accuracy, nonzero parameters, test accuracy)."""
    study = optuna.create_study(directions=DIRECTIONS)
    for accuracy, nonzero, test in trials:
        attrs = {"test_accuracy": test, "dense_params": 2000, "arch": "conv 8 k3 > head"}
        study.add_trial(optuna.create_trial(values=[accuracy, nonzero, 1], user_attrs=attrs))
    return study


def test_the_summary_flags_a_recorded_validation_accuracy_outside_the_folds():
    study = small_study((0.9, 1000, 0.80), (0.8, 500, 0.95))
    runs = [
        {"trial": trial, "fold": fold, "accuracy": val, "test_accuracy": test}
        for trial, vals in ((0, (0.80, 0.82, 0.81)), (1, (0.78, 0.81, 0.83)))
        for fold, val, test in zip(range(3), vals, (0.81, 0.82, 0.83), strict=True)
    ]
    outside, inside = summarise(study, runs, Folds(3))  # trial 1's test accuracy is no matter
    assert (outside["trial"], outside["verdict"], outside["folds"]) == (0, "outside", 3)
    assert outside["val_mean"] == pytest.approx(0.81) and outside["val_std"] == pytest.approx(0.01)
    assert (outside["val_min"], outside["val_max"]) == (0.80, 0.82)
    assert (outside["test_mean"], outside["test_max"]) == (pytest.approx(0.82), 0.83)
    assert inside["verdict"] == ""


def test_k_folds_give_k_rows_per_front_trial_stored_per_fold_count_and_reused(monkeypatch):
    study = small_study((0.9, 1000, 0.9), (0.8, 500, 0.8), (0.7, 2000, 0.7))  # #2: dominated
    front = [trial.number for trial in front_trials(study)]
    assert sorted(front) == [0, 1]
    ran = []

    def fake_run(self, trial, seed):
        held_out = numbers(self.pipeline.splits.val_x)
        ran.append((trial.number, seed, tuple(held_out)))
        measures = dict.fromkeys(MEASURES, 1) | {"accuracy": len(held_out) / 10}
        return seed + 1, SimpleNamespace(**measures)

    monkeypatch.setattr(Retrainer, "run", fake_run)
    retrainer = retrainer_on(numbered_splits())

    runs = retrain_front(study, retrainer, Folds(2))
    assert [(row["trial"], row["fold"]) for row in runs] == [(t, f) for t in front for f in (0, 1)]
    assert [row["accuracy"] for row in runs] == [0.7] * 4  # each fold held out 7 of the 14
    assert not any(row["reused"] for row in runs) and {row["weight_seed"] for row in runs} == {8}
    assert len(ran) == 4 and {seed for _, seed, _ in ran} == {7}
    assert len({held_out for _, _, held_out in ran}) == 2  # the two folds, each for both trials
    assert set(study.user_attrs[f"cv.trial{front[0]}"]) == {"0 of 2", "1 of 2"}

    ran.clear()
    again = retrain_front(study, retrainer, Folds(2))
    assert ran == [] and again == [{**row, "reused": True} for row in runs]

    three = retrain_front(study, retrainer, Folds(3))  # another fold count: no run of 2 reused
    assert len(ran) == 6 and not any(row["reused"] for row in three)
    assert set(study.user_attrs[f"cv.trial{front[0]}"]) == {
        "0 of 2", "1 of 2", "0 of 3", "1 of 3", "2 of 3",
    }  # fmt: skip
    assert not any(key.startswith("retrain.") for key in study.user_attrs)


@pytest.mark.slow
def test_report_cross_validates_the_front_writes_its_files_and_a_second_report_reuses_them(
    cli_study, tmp_path
):
    launch = tmp_path / "launch"
    shutil.copytree(cli_study, launch)
    result = forked_nas("report", "study.name=cnn-smoke", "+debug=smoke", "cv_folds=2", cwd=launch)
    assert result.returncode == 0, result.stderr
    assert "on 2 folds of its" in result.stdout and "(seed 0, split seed 0;" in result.stdout
    assert "cv: 100%" in result.stderr  # the progress bar

    run_dir, front, runs, summary = report_rows(launch, "cv")
    assert [(r["trial"], r["fold"]) for r in runs] == [
        (row["trial"], fold) for row in front for fold in ("0", "1")
    ]
    assert [row["trial"] for row in summary] == [row["trial"] for row in front]
    for row in summary:
        assert row["folds"] == "2" and row["verdict"] in ("", "outside")
        assert not math.isnan(float(row["val_std"])) and not math.isnan(float(row["test_std"]))
        vals = [float(run["accuracy"]) for run in runs if run["trial"] == row["trial"]]
        assert (float(row["val_min"]), float(row["val_max"])) == (min(vals), max(vals))
    for suffix in (".png", ".html"):
        assert (run_dir / f"cv_front{suffix}").stat().st_size > 0
    table = result.stdout.split("reused from the study):\n")[1].splitlines()
    assert table[0].split() == [
        "trial", "nonzero_params", "accuracy", "val_mean", "val_std", "val_min", "val_max",
        "test_accuracy", "test_mean", "test_std", "verdict", "arch",
    ]  # fmt: skip
    assert [line.split()[0] for line in table[1 : 1 + len(front)]] == [r["trial"] for r in front]
    assert f"({2 * len(front)} trained, 0 reused from the study)" in result.stdout

    assert_a_second_report_reuses_every_run(
        launch, "cv_folds=2", "cv", run_dir, 2 * len(front), summary
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "value, fragment",
    [("1", "got 1"), ("-2", "got -2"), ("1.5", "got 1.5"), ("two", "got 'two'")],
)
def test_bad_cv_folds_are_one_line_exit_2_and_leave_the_study_as_it_was(
    cli_study, tmp_path, value, fragment
):
    launch = tmp_path / "launch"
    shutil.copytree(cli_study, launch)
    before = (launch / "outputs" / "smoke.db").read_bytes()
    fronts = set(launch.rglob("front.csv"))

    result = forked_nas(
        "report", "+debug=smoke", "study.name=cnn-smoke", f"cv_folds={value}", cwd=launch
    )

    assert_one_line_error(result, "cv_folds must be 0 (off) or a whole number >= 2", fragment)
    assert (launch / "outputs" / "smoke.db").read_bytes() == before
    assert set(launch.rglob("front.csv")) == fronts, "a front was written despite the error"
