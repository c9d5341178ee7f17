from __future__ import annotations

import json
import logging
from pathlib import Path

import optuna
import pytest
import torch
from hydra.utils import instantiate
from optuna.artifacts import FileSystemArtifactStore

from nas.errors import UsageError
from nas.search.storage import artifact_dir, storage_url
from nas.search.weights import load_pruned_weights
from nas.studies.joint_search import run_search


@pytest.fixture
def search(compose_config, tmp_path):
    """run_search on the smoke config, with a study in a temporary SQLite file."""

    def _search(*overrides: str, db: str = "study.db"):
        storage = f"sqlite:///{tmp_path / db}"
        cfg = compose_config(
            "+space=cnn", "+debug=smoke", "study.name=test", f"study.storage={storage}", *overrides
        )
        return run_search(cfg, launch_dir=tmp_path, run_dir=tmp_path / "run")

    return _search


def completed(study):
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


@pytest.mark.slow
def test_a_search_stores_named_metrics_and_writes_its_front(search, tmp_path, capsys):
    study = search()
    assert study.metric_names == ["accuracy", "nonzero_params", "flops"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MINIMIZE"]
    assert len(completed(study)) == 2
    front = json.loads((tmp_path / "run" / "front.json").read_text())
    assert {row["trial"] for row in front} == {t.number for t in study.best_trials}
    assert "Pareto front of study 'test'" in capsys.readouterr().out


@pytest.mark.slow
def test_n_trials_is_the_total_and_resuming_adds_only_the_missing_ones(search, caplog):
    search("study.n_trials=2")
    study = search("study.n_trials=3")
    assert len(completed(study)) == 3
    caplog.set_level(logging.INFO, logger="nas.search.study")
    study = search("study.n_trials=3")
    assert len(study.trials) == 3
    assert "study 'test' already holds 3 finished trials (n_trials=3)" in caplog.text
    assert caplog.text.rstrip().endswith("training epochs (no epoch limit)")


@pytest.mark.slow
def test_a_resumed_study_does_not_replay_its_first_samples(search):
    search("study.n_trials=2")
    study = search("study.n_trials=4")
    first, resumed = study.trials[:2], study.trials[2:]
    assert [t.params for t in first] != [t.params for t in resumed]


@pytest.mark.slow
def test_the_same_seed_samples_the_same_parameters(search):
    a = search("seed=5", db="a.db")
    b = search("seed=5", db="b.db")
    c = search("seed=6", db="c.db")
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.params for t in a.trials] != [t.params for t in c.trials]


def test_a_file_that_is_not_sqlite_is_refused_and_left_as_it_was(search, tmp_path):
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("my notes, not a database\n")
    with pytest.raises(UsageError, match="cannot open the study storage"):
        search(db="notes.db")
    assert not_a_database.read_text() == "my notes, not a database\n"


def test_default_storage_is_a_sqlite_file_under_outputs_of_the_launch_dir(tmp_path):
    url = storage_url(None, tmp_path)
    assert url == f"sqlite:///{tmp_path}/outputs/nas.db"
    assert (tmp_path / "outputs").is_dir()
    assert storage_url("postgresql://h/db", tmp_path) == "postgresql://h/db"


def test_a_relative_sqlite_file_lies_under_the_launch_dir(tmp_path):
    url = storage_url("sqlite:///outputs/smoke.db?timeout=5", tmp_path)
    assert url == f"sqlite:///{tmp_path}/outputs/smoke.db?timeout=5"
    assert (tmp_path / "outputs").is_dir()
    assert storage_url("sqlite:////data/nas.db", tmp_path) == "sqlite:////data/nas.db"


@pytest.mark.parametrize(
    "override, message",
    [
        ("study.n_trials=0", "study.n_trials"),
        ("train.epochs=0", "train.epochs"),
        ("study.n_trials=many", "study.n_trials must be a whole number >= 1, got 'many'"),
        ("seed=1.5", "seed must be a whole number, got 1.5"),
        ("study.grace_period=10", "study.grace_period must be a whole number >= 11, got 10"),
        (
            "study.max_consecutive_failures=0",
            "study.max_consecutive_failures must be a whole number >= 1, got 0",
        ),
        (
            "study.checkpoint_over_epochs=-1",
            "study.checkpoint_over_epochs must be a whole number >= 0, got -1",
        ),
        ("study.max_retry=two", "study.max_retry must be a whole number >= 0, got 'two'"),
        ("prune=nm prune.m=1", "prune.m must be a whole number >= 2, got 1"),
        ("train.lr=fast", "train.lr must be a number > 0, got 'fast'"),
        ("space.sparsity.high=1.0", "sparsity bounds"),
        ("device=tpu7", "device"),
        ("study.storage=nosuchdb://host/x", "cannot open the study storage"),
        ("study.storage=sqlite:////no/such/folder/x.db", "cannot open the study storage"),
    ],
)
def test_bad_values_raise_one_usage_error(search, override, message, tmp_path):
    with pytest.raises(UsageError, match=message):
        search(*override.split())
    assert not (tmp_path / "run").exists()


def test_the_artifact_store_sits_beside_a_sqlite_file_or_under_outputs(tmp_path):
    assert artifact_dir("sqlite:////data/nas.db", None, tmp_path) == Path("/data/nas-artifacts")
    assert artifact_dir("postgresql://h/db", None, tmp_path) == tmp_path / "outputs" / "artifacts"
    assert artifact_dir("sqlite:////data/nas.db", "/shared/ckpt", tmp_path) == Path("/shared/ckpt")


def nonzeros_per_group_of_4(weight: torch.Tensor) -> torch.Tensor | None:
    """Nonzero count of every group of 4 consecutive input channels of `weight` (for a conv,
    at each kernel position); None when its input channels are not a multiple of 4."""
    channels_last = weight.movedim(1, -1) if weight.dim() > 2 else weight
    if channels_last.shape[-1] % 4:
        return None
    return (channels_last.reshape(-1, 4) != 0).sum(dim=1)


@pytest.mark.slow
def test_a_search_with_nm_pruning_reaches_n_of_4_patterns(search, tmp_path):
    study = search("prune=nm", "study.n_trials=3")
    store = FileSystemArtifactStore(
        str(artifact_dir(f"sqlite:///{tmp_path / 'study.db'}", None, tmp_path))
    )
    zeroed = 0
    for trial in completed(study):
        weights = load_pruned_weights(store, study._storage, trial)
        structured = 0
        for layer, target in trial.user_attrs["sparsity_target"].items():
            weight = weights[f"{layer}.weight"]
            groups = nonzeros_per_group_of_4(weight)
            if groups is None:  # block1.conv has one input channel: unstructured fallback
                continue
            kept = min(4, max(1, round((1 - target) * 4)))
            assert groups.tolist() == [kept] * len(groups), layer
            assert trial.user_attrs["sparsity_achieved"][layer] == pytest.approx(1 - kept / 4)
            structured += 1
            zeroed += int((weight == 0).sum())
        assert structured, "every smoke candidate has a layer with 4k inputs"
    assert zeroed, "N:M pruning zeroed no weight"


@pytest.mark.slow
def test_max_epochs_stops_the_search_before_its_training_epochs_pass_the_budget(search):
    study = search("study.n_trials=50", "study.max_epochs=5")  # trials of 1 + 1 epochs
    spent = [t.user_attrs["train_epochs"] for t in completed(study)]
    assert sum(spent) <= 5 and len(spent) >= 2
    refused = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all("study.max_epochs=5" in t.user_attrs["not_run"] for t in refused)
    resumed = search("study.n_trials=50", "study.max_epochs=5")
    assert len(resumed.trials) == len(study.trials)  # the budget is spent: nothing new


@pytest.mark.slow
def test_a_constraint_on_nonzero_params_keeps_heavier_trials_off_the_front(search):
    study = search(
        "study.n_trials=4", "study.max_nonzero_params=6000", "study.siblings=0",
        "space.sparsity.allocation=per_layer", "space.sparsity.low=0", "space.sparsity.high=0.95",
        "space.sparsity.step=0.05",
    )  # fmt: skip
    over = [t for t in completed(study) if t.values[1] > 6000]
    assert over, "the smoke space should produce trials above 6,000 nonzero params"
    for trial in completed(study):
        assert trial.constraints["max_nonzero_params"] == trial.values[1] - 6000
    assert study.best_trials and all(t.values[1] <= 6000 for t in study.best_trials)


@pytest.mark.slow
def test_a_pruned_network_that_kept_too_little_of_its_margin_over_chance_is_infeasible(
    search, compose_config
):
    study = search("study.n_trials=4", "study.min_accuracy_kept=0.9", "seed=1")
    labels = instantiate(compose_config("+space=cnn", "+debug=smoke").data).val_y
    chance = int(torch.bincount(labels).max()) / len(labels)  # 4 classes, near 0.25

    def floor(trial):
        margin = 0.9 * (trial.user_attrs["dense_accuracy"] - chance)
        return chance + max(margin, 1 / len(labels))  # and one image above chance

    for trial in completed(study):
        below = floor(trial) - trial.values[0]
        assert trial.constraints == {"min_accuracy_kept": pytest.approx(below, abs=1e-9)}
    kept = [t for t in completed(study) if t.values[0] >= floor(t)]
    assert len(kept) < len(completed(study)), "the smoke search should break some network"
    assert study.best_trials and {t.number for t in study.best_trials} <= {t.number for t in kept}
