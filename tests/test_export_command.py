"""`python -m nas export`: a finished trial's pruned network, out of the study, as files."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nas import load_model
from nas.cli.commands import export_stem, pick_trial
from nas.errors import UsageError
from nas.trial.train import accuracy
from tests.conftest import forked_nas


@pytest.mark.slow
@pytest.mark.parametrize(
    "space, pruning", [("cnn", "prune=magnitude"), ("resnet", "prune=channel")]
)
def test_exported_files_reproduce_the_trials_test_accuracy_exactly(tmp_path, space, pruning):
    searched = forked_nas(
        "search", f"+space={space}", pruning, "+debug=smoke", "study.n_trials=2", cwd=tmp_path
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    result = forked_nas(
        "export", "+debug=smoke", f"study.name={space}-smoke", "trial=1", "out=ship/t1",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "CPU latency, dense network vs exported program: dense" in result.stdout

    study = optuna.load_study(
        study_name=f"{space}-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
    )
    recorded = study.trials[1].user_attrs["test_accuracy"]
    splits = instantiate(OmegaConf.create(study.user_attrs["data_config"]))
    files = sorted((tmp_path / "ship").iterdir())
    assert [f.name for f in files] == ["t1.pt2", "t1.sparse.pt", "t1.state_dict.pt"]
    for path in files:
        assert f"  {path}  " in result.stdout  # absolute, though out= was relative
        assert accuracy(load_model(path), splits.test_x, splits.test_y) == recorded, path.name


def test_best_is_the_smallest_model_within_best_within_of_the_top_accuracy():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    for values in ([0.97, 9000, 1], [0.965, 4000, 1], [0.95, 1000, 1]):
        study.add_trial(optuna.create_trial(values=values))
    assert pick_trial(study, "best", 0.01).number == 1
    assert pick_trial(study, "best", 0.0).number == 0
    assert pick_trial(study, "best", 0.05).number == 2
    assert pick_trial(study, 2, 0.01).number == 2
    with pytest.raises(UsageError, match="trial=7 is not a finished trial; finished: 0, 1, 2"):
        pick_trial(study, 7, 0.01)


def test_the_export_path_is_absolute_whether_out_is_given_relative_or_not(tmp_path):
    assert export_stem("ship/t1", tmp_path, "cnn-trial1") == tmp_path / "ship" / "t1"
    assert export_stem(None, tmp_path, "cnn-trial1") == tmp_path / "exports" / "cnn-trial1"
    assert export_stem("/srv/t1", tmp_path, "cnn-trial1") == Path("/srv/t1")
    assert export_stem("t1", Path("launch"), "x").is_absolute()
