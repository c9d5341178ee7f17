"""benchmarks/small_end.py: the best trial within a share of the reference's parameters,
split into its dense network and what pruning took."""

from __future__ import annotations

import importlib

import optuna
import pytest

from tests.test_front_quality_benchmark import MLP  # at its largest: 173 params

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def trial(accuracy: float, params: int, dense_params: int, dense_accuracy: float, test: float):
    return optuna.trial.create_trial(
        values=[accuracy, params, 100],
        user_attrs={
            "arch": f"mlp {dense_params}",
            "dense_params": dense_params,
            "dense_accuracy": dense_accuracy,
            "test_accuracy": test,
        },
    )


@pytest.fixture
def seeds(tmp_path):
    """Two seeds' studies of `search` under tag t, as the front-quality benchmark stores them."""
    small_end = importlib.import_module("benchmarks.small_end")
    runs = {
        1: [
            trial(0.90, 80, 160, 0.95, 0.88),
            trial(0.99, 100, 173, 0.99, 0.98),
            trial(0.70, 40, 173, 0.99, 0.71),
        ],
        2: [trial(0.60, 86, 172, 0.80, 0.62)],
    }
    for seed, trials in runs.items():
        study = optuna.create_study(
            storage=f"sqlite:///{tmp_path / f'front_quality-s{seed}.db'}",
            study_name=f"t-s{seed}-search",
            directions=["maximize", "minimize", "minimize"],
        )
        study.set_metric_names(["accuracy", "nonzero_params", "flops"])
        for key, value in (("space_config", MLP), ("in_shape", [1, 3, 2]), ("n_classes", 5)):
            study.set_user_attr(key, value)
        study.add_trials(trials)
    return small_end, tmp_path


def table_rows(seeds, capsys, share: str) -> list[str]:
    """The seed rows and the mean row small_end prints for seeds 1 and 2 at `share`."""
    small_end, out = seeds
    argv = ["--out", str(out), "--tag", "t", "--method", "search", "--seeds", "1", "2"]
    small_end.main([*argv, "--share", share])
    return capsys.readouterr().out.splitlines()[3:6]


def test_each_seed_shows_its_most_accurate_trial_within_the_share_and_what_pruning_took(
    seeds, capsys
):
    # half of 173 params is 86.5: seed 1's 100-param trial is too large, its 80-param one
    # (0.90) beats its 40-param one (0.70); 80 of a dense 160 is half pruned
    assert table_rows(seeds, capsys, "0.5") == [
        "| 1 | 0 | mlp 160 | 160 | 50% | 80 | 0.950 | 0.900 | 0.880 |",
        "| 2 | 0 | mlp 172 | 172 | 50% | 86 | 0.800 | 0.600 | 0.620 |",
        "| mean |  |  | 166 | 50% | 83 | 0.875 | 0.750 | 0.750 |",
    ]


def test_a_seed_with_no_trial_that_small_says_so_and_is_left_out_of_the_mean(seeds, capsys):
    assert table_rows(seeds, capsys, "0.3") == [
        "| 1 | 2 | mlp 173 | 173 | 77% | 40 | 0.990 | 0.700 | 0.710 |",
        "| 2 | - | none that small | | | | | | |",
        "| mean |  |  | 173 | 77% | 40 | 0.990 | 0.700 | 0.710 |",
    ]
