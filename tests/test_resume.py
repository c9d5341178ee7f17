"""Resuming a study with settings that change a trial's numbers (space, data, training,
fine-tuning, pruning, schedule, seed) is refused in one line, the study untouched; budget,
device and other `study.*` settings may change."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir

from nas.errors import UsageError
from nas.search.recorded import setting_changes
from nas.studies.joint_search import run_search
from tests.conftest import CONF_DIR


def resumed(database: Path, *overrides: str) -> object:
    """run_search of smoke study `test` in `database` with `overrides`."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(
            config_name="config",
            overrides=[
                "+space=cnn", "+debug=smoke", "study.name=test",
                f"study.storage=sqlite:///{database}", *overrides,
            ],
        )  # fmt: skip
    return run_search(cfg, launch_dir=database.parent, run_dir=database.parent / "run")


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory) -> Path:
    """A SQLite file holding the 2-trial smoke study `test`."""
    database = tmp_path_factory.mktemp("made") / "study.db"
    resumed(database)
    return database


@pytest.fixture
def database(smoke_study, tmp_path) -> Path:
    """A copy of the smoke study's file."""
    return Path(shutil.copy(smoke_study, tmp_path / "study.db"))


@pytest.mark.parametrize(
    "overrides, changes",
    [
        (("train.epochs=3",), "train.epochs 1 -> 3"),
        (("data.split_seed=5", "train.lr=0.01"), "data.split_seed 0 -> 5, train.lr 0.002 -> 0.01"),
        (("finetune.distill=true",), "finetune.distill false -> true"),
        (
            ("prune=nm",),
            "prune._target_ nas.prune.methods.MagnitudePruning -> nas.prune.methods.NMPruning, "
            "prune.m (unset) -> 4",
        ),
        (
            ("schedule=iterative",),
            "schedule._target_ nas.prune.schedule.OneShot -> "
            "nas.prune.schedule.Iterative, schedule.rounds (unset) -> 3",
        ),
        (("seed=3",), "seed 0 -> 3"),
        (("space.channels=[8,16]",), "space.channels [4, 8, 16, 32] -> [8, 16]"),
        (("space.sparsity.high=0.9",), "space.sparsity.high 0.99 -> 0.9"),
    ],
)
def test_resuming_with_other_settings_is_refused_naming_them_and_changes_nothing(
    database, overrides, changes
):
    before = database.read_bytes()
    with pytest.raises(UsageError) as error:
        resumed(database, *overrides)
    assert str(error.value) == (
        f"study 'test' was made with other settings: {changes}; "
        f"use another study.name or the same settings"
    )
    assert database.read_bytes() == before


def test_resuming_with_another_budget_device_or_study_setting_is_accepted(database):
    study = resumed(database, "study.n_trials=1", "study.max_epochs=50", "study.siblings=0")
    assert len(study.trials) == 2  # the budget is already spent: nothing new
    study = resumed(database, "study.n_trials=3", "device=cpu", "study.dense_cache=0")
    assert len(study.trials) == 3


def test_downloading_and_moved_modules_are_no_change_of_settings():
    study = optuna.create_study()
    study.set_user_attr("data_config", {"name": "mnist", "download": False})
    study.set_user_attr("prune_config", {"_target_": "nas.pruning.MagnitudePruning"})
    same = {"_target_": "nas.prune.methods.MagnitudePruning"}
    data = {"name": "mnist", "download": True}
    assert setting_changes(study, {"data_config": data, "prune_config": same}) == []
    other = {"data_config": {"name": "cifar10", "download": False}, "seed": 1}
    assert setting_changes(study, other) == ["data.name mnist -> cifar10"]  # no seed recorded
