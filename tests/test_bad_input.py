"""Bad input: one line on stderr, exit code 2, and the study database byte-for-byte as it was."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import optuna
import pytest

from tests.conftest import assert_one_line_error, forked_nas, run_nas

SECRET = "hunter2-secret"
POSTGRES = f"study.storage=postgresql+psycopg2://nas:{SECRET}@127.0.0.1:1/nas"
# These run as a user runs them, each in a new `python -m nas`; the others are forked from
# one that has imported the command's modules already (`forked_nas`): seconds faster.
IN_A_NEW_PROCESS = {(), ("+space=cnn", POSTGRES)}


@pytest.fixture(scope="module")
def existing_studies(tmp_path_factory) -> Path:
    """outputs/smoke.db holding a finished `cnn-smoke` study, a `single` study with one
    objective and an `other` study made for another space."""
    folder = tmp_path_factory.mktemp("existing")
    result = forked_nas("search", "+space=cnn", "+debug=smoke", "study.n_trials=1", cwd=folder)
    assert result.returncode == 0, result.stderr
    storage = f"sqlite:///{folder}/outputs/smoke.db"
    optuna.create_study(study_name="single", storage=storage, direction="maximize")
    other = optuna.create_study(
        study_name="other", storage=storage, directions=["maximize", "minimize", "minimize"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        other.set_metric_names(["accuracy", "nonzero_params", "flops"])
    other.set_user_attr("space", "search_spaces.mlp.MLPSpace")
    (folder / "notes.db").write_text("my notes, not a database\n")
    corrupted = bytearray((folder / "outputs" / "smoke.db").read_bytes())
    corrupted[5000:9000] = b"x" * 4000
    (folder / "corrupted.db").write_bytes(bytes(corrupted))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, fragments",
    [
        ((), ("no search space given", "+space=NAME")),
        (("+space=nope",), ("unknown search space 'nope'", "available: cnn")),
        (("+space=cnn", "space.sparsity.high=1.0"), ("sparsity bounds", "high=1.0")),
        (("+space=cnn", "space.sparsity.low=-0.1"), ("sparsity bounds", "low=-0.1")),
        (("+space=cnn", "train.epochs=0"), ("train.epochs must be a whole number >= 1, got 0",)),
        (
            ("+space=cnn", "train.finetune_epochs=-1"),
            ("train.finetune_epochs must be a whole number >= 0",),
        ),
        (("+space=cnn", "study.n_trials=0"), ("study.n_trials must be a whole number >= 1",)),
        (("+space=cnn", "finetune.distill=yes"), ("finetune.distill must be true or false",)),
        (("+space=cnn", "study.objectives=[accuracy,speed]"), ("study.objectives", "'speed'")),
        (("+space=cnn", "finetune.distill=true", "finetune.weight=2"), ("finetune.weight",)),
        (("+space=cnn", "study.n_trials=-3"), ("study.n_trials must be a whole number >= 1",)),
        (("+space=cnn", "study.min_accuracy_kept=1.5"), ("study.min_accuracy_kept", "1.5")),
        (
            ("+space=cnn", "study.revisit_share=1"),
            ("study.revisit_share must be a number in [0, 1)",),
        ),
        (
            ("+space=cnn", "train.polish.share=1"),
            ("train.polish.share must be a number in [0, 1)",),
        ),
        (("+space=cnn", "bogus=1"), ("Could not override 'bogus'", "use +bogus=1")),
        (("+space=cnn", "train=nope"), ("Could not find 'train/nope'", "'train': default, super")),
        (("+space=cnn", "study.n_trials=[1"), ("override 'study.n_trials=[1'", "no viable")),
        (("+space=cnn", POSTGRES), ("cannot open the study storage", "nas:***@127.0.0.1:1")),
        (("+space=cnn", "study.storage=not a url"), ("study.storage is not a database URL",)),
        (("+space=cnn", "study.storage=nosuchdb://h/x"), ("cannot open the study storage",)),
        (("+space=cnn", "study.name=single"), ("'single' already exists with other objectives",)),
        (("+space=cnn", "study.name=other"), ("'other' already exists for space", "MLPSpace")),
        (
            ("+space=cnn", "train.epochs=2", "data.split_seed=5"),
            (
                "study 'cnn-smoke' was made with other settings: data.split_seed 0 -> 5, "
                "train.epochs 1 -> 2; use another study.name or the same settings",
            ),
        ),
        (("+space=cnn", "data=folder", "data.root=/no/such"), ("data.root", "does not exist")),
        (("+space=cnn", "study.storage=sqlite:///corrupted.db"), ("malformed",)),
        (("+space=cnn", "study.storage=sqlite:///notes.db"), ("file is not a database",)),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_every_file_as_it_was(
    existing_studies, tmp_path, overrides, fragments
):
    launch = tmp_path / "launch"
    shutil.copytree(existing_studies, launch)
    before = {path: path.read_bytes() for path in launch.rglob("*.db")}
    fronts = set(launch.rglob("front.csv"))

    run = run_nas if overrides in IN_A_NEW_PROCESS else forked_nas
    result = run("search", "+debug=smoke", *overrides, cwd=launch)

    assert_one_line_error(result, *fragments)
    assert {path: path.read_bytes() for path in launch.rglob("*.db")} == before
    assert set(launch.rglob("front.csv")) == fronts, "a front was written despite the error"
    written = [path.read_bytes() for path in (launch / "outputs").rglob("*") if path.is_file()]
    assert SECRET not in result.stdout + result.stderr
    assert not any(SECRET.encode() in content for content in written)


@pytest.mark.slow
def test_a_missing_database_driver_names_the_extra_and_a_refusal_leaves_no_run_folder(tmp_path):
    done = forked_nas(
        "search", "+space=cnn", "+debug=smoke", "study.storage=postgresql+psycopg://u@localhost/db",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(done, "No module named 'psycopg'")
    assert "pip install 'nas[postgres]'" in done.stderr and "postgresql+psycopg2://" in done.stderr
    runs = tmp_path / "outputs" / "runs"
    assert not runs.exists() or not list(runs.iterdir()), "a refused command left a run folder"
