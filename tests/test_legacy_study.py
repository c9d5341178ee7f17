"""A study written before nas/ was grouped into subpackages (tests/data/legacy_study: a
2-trial smoke search of `cnn` with schedule=gradual, made by commit 2817b18) still
reports, exports, retrains and resumes: its recorded `_target_`s name moved modules. Its
schedule cannot act within its fine-tuning, which a search now refuses: the resumed copy
records one that can."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from hydra.utils import instantiate
from optuna.trial import TrialState

from nas.prune.methods import MagnitudePruning
from nas.prune.schedule import Gradual
from nas.search.recorded import current_target, recorded_config
from tests.conftest import assert_one_line_error, forked_nas

LEGACY = Path(__file__).resolve().parent / "data" / "legacy_study"


@pytest.fixture
def legacy(tmp_path) -> tuple[Path, list[str]]:
    """A copy of the legacy study's folder and the overrides that point a command at it."""
    shutil.copytree(LEGACY, tmp_path / "old")
    folder = tmp_path / "old"
    overrides = [
        "study.name=legacy",
        f"study.storage=sqlite:///{folder}/nas.db",
        f"study.artifacts={folder}/nas-artifacts",
    ]
    return folder, overrides


def test_the_old_targets_map_to_the_modules_that_hold_them_now(legacy):
    folder, _ = legacy
    study = optuna.load_study(study_name="legacy", storage=f"sqlite:///{folder}/nas.db")
    assert study.user_attrs["prune_config"]["_target_"] == "nas.pruning.MagnitudePruning"
    assert isinstance(instantiate(recorded_config(study, "prune")), MagnitudePruning)
    assert isinstance(instantiate(recorded_config(study, "schedule")), Gradual)
    assert recorded_config(study, "data")["_target_"] == "nas.data.synthetic_images"
    assert recorded_config(study, "nothing") is None
    assert current_target("search_spaces.cnn.CNNSpace") == "search_spaces.cnn.CNNSpace"


@pytest.mark.slow
def test_a_legacy_study_reports_retrains_exports_and_resumes(legacy, tmp_path):
    folder, overrides = legacy
    reported = forked_nas("report", *overrides, "retrain_seeds=1", cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    assert "Pareto front of study 'legacy' (2 of 2 finished trials)" in reported.stdout
    (retrain_csv,) = tmp_path.glob("outputs/runs/*/retrain.csv")
    assert len(retrain_csv.read_text().splitlines()) == 1 + 2  # header, one seed per trial

    exported = forked_nas("export", *overrides, "trial=0", f"out={tmp_path}/ship/t0", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "ship" / "t0.pt2").stat().st_size > 0

    # the cnn space as it was made with, before it offered 4 channels
    search = (
        "search",
        "+space=cnn",
        "+debug=smoke",
        "schedule=gradual",
        "space.channels=[8,16,32]",
        *overrides,
    )
    refused = forked_nas(*search, "study.n_trials=3", cwd=tmp_path)
    # its ramp (every 10 of its 4 fine-tuning steps) cut all of the ratios at its step 3
    assert_one_line_error(refused, "schedule.every=10 puts the ramp's first pruning at step 3")
    study = optuna.load_study(study_name="legacy", storage=f"sqlite:///{folder}/nas.db")
    study.set_user_attr("schedule_config", {**study.user_attrs["schedule_config"], "every": 1})
    resumed = forked_nas(*search, "schedule.every=1", "study.n_trials=3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3
