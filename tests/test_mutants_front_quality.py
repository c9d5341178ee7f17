"""What the front-quality benchmark's measuring functions (benchmarks/front_quality.py) do
that the broader tests leave open: the reference's dense size for a mlp space and a space
derived from a network; only finished trials, read by objective name, counted by `measure`
(epochs without a supernet, training FLOPs never recorded, the wall time to the first
front, the step plot's shares); refusals of seeds that do not pair up; and the exact text
of the accuracy-at-a-size and paired tables at their edges (no network that small, no test
accuracy, one seed, a first method without regret)."""

from __future__ import annotations

import datetime
import importlib
import math

import optuna
import pytest

from nas.errors import UsageError

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

NAN = float("nan")


@pytest.fixture(scope="module")
def bench():
    """The script as the package module `benchmarks.front_quality`."""
    return importlib.import_module("benchmarks.front_quality")


def study_of(*trials: tuple[float, int, float | None]) -> optuna.Study:
    """An in-memory study of trials (accuracy, nonzero params, training FLOPs; None: not
    recorded), each of 1 epoch and 100 FLOPs, without a supernet."""
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.set_metric_names(["accuracy", "nonzero_params", "flops"])
    for accuracy, params, flops in trials:
        attrs = {"train_epochs": 1} | ({} if flops is None else {"train_flops": flops})
        study.add_trial(optuna.trial.create_trial(values=[accuracy, params, 100], user_attrs=attrs))
    return study


def recorded(space_config: dict, in_shape: list[int], n_classes: int) -> optuna.Study:
    """A study carrying what a search records of its space and data."""
    study = optuna.create_study()
    study.set_user_attr("space_config", space_config)
    study.set_user_attr("in_shape", in_shape)
    study.set_user_attr("n_classes", n_classes)
    return study


# --- reference_size ------------------------------------------------------------------------


def test_the_reference_of_a_mlp_space_is_its_deepest_widest_network_dense(bench):
    study = recorded(
        {
            "_target_": "search_spaces.mlp.MLPSpace",
            "depth": [1, 2],
            "widths": [4, 8],
            "activations": ["relu"],
            "sparsity": {"low": 0.5, "high": 0.9, "step": 0.1, "allocation": "per_layer"},
        },
        in_shape=[1, 3, 2],
        n_classes=5,
    )
    # 6 inputs -> 8 -> 8 -> 5 classes: params 6*8+8 + 8*8+8 + 8*5+5 = 56 + 72 + 45 = 173;
    # FLOPs 2 x (6*8 + 8*8 + 8*5) = 2 x 152 = 304 (the sparsity grid's 0.5 floor not applied)
    assert bench.reference_size(study) == (173, 304)


CONV_NET = {  # a conv of 3 input channels (RGB) then a classifier of 5 classes
    "_target_": "nas.derive.ModelSpace",
    "model": {
        "_target_": "torch.nn.Sequential",
        "_args_": [
            {"_target_": "torch.nn.Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3},
            {"_target_": "torch.nn.ReLU"},
            {"_target_": "torch.nn.Flatten"},
            {"_target_": "torch.nn.Linear", "in_features": 32, "out_features": 5},
        ],
    },
    "widths": [0.5, 1.0],
    "multiple": 1,
    "sparsity": {"low": 0.5, "high": 0.9, "step": 0.1, "allocation": "lamp"},
}


def test_the_reference_of_a_space_derived_from_a_network_is_it_bound_to_the_data(bench):
    study = recorded(CONV_NET, in_shape=[1, 4, 4], n_classes=5)
    # bound to one-channel 4x4 inputs: the conv rebuilt for 1 channel, all 8 kept
    # conv 8*1*9+8 = 80 params, 8x2x2 = 32 outputs of 9 MACs each: 2 x 288 = 576 FLOPs
    # linear 32*5+5 = 165 params, 2 x 160 = 320 FLOPs: (245, 896)
    assert bench.reference_size(study) == (245, 896)


def test_a_study_whose_space_does_not_give_its_data_s_classes_is_refused(bench):
    study = recorded(CONV_NET, in_shape=[1, 4, 4], n_classes=7)
    with pytest.raises(UsageError, match="gives 5 outputs but the data has 7 classes"):
        bench.reference_size(study)


# --- measure -------------------------------------------------------------------------------


def test_only_finished_trials_are_measured(bench):
    study = study_of((0.9, 10, 50.0), (0.8, 5, 50.0))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING))
    measured = bench.measure(study, (1000, 1000))
    assert (measured.trials, measured.epochs, measured.train_flops) == (2, 2, 100.0)
    assert measured.points.shape == (2, 3)


def test_objectives_are_read_by_name_whatever_their_order(bench):
    study = optuna.create_study(directions=["minimize", "maximize"])
    study.set_metric_names(["nonzero_params", "accuracy"])  # FLOPs recorded as a user attr
    study.add_trial(
        optuna.trial.create_trial(
            values=[100, 0.9], user_attrs={"flops": 50, "train_epochs": 1, "train_flops": 1.0}
        )
    )
    measured = bench.measure(study, (1000, 1000))
    # 1 - 0.9, 100 / 1000, 50 / 1000
    assert measured.points.tolist() == [[pytest.approx(0.1), 0.1, 0.05]]
    assert measured.best(0.10) == pytest.approx(0.9)


def test_without_a_supernet_the_epochs_are_the_trials_own(bench):
    assert bench.measure(study_of((0.9, 10, 1.0), (0.8, 5, 1.0)), (1000, 1000)).epochs == 2


def test_a_trial_that_never_recorded_training_flops_counts_nan_and_stays(bench):
    study = study_of((0.9, 10, None), (0.8, 5, None))
    assert math.isnan(bench._train_flops(study.trials[0]))
    measured = bench.measure(study, (1000, 1000), flops_budget=1.0)
    assert measured.trials == 2
    assert math.isnan(measured.train_flops)


def test_the_first_front_is_timed_from_the_first_start_to_the_first_finish(bench):
    study = study_of()
    start = datetime.datetime(2026, 1, 1)
    for index, (began, ended) in enumerate([(0.0, 12.5), (1.0, 20.0)]):
        trial = optuna.trial.create_trial(
            values=[0.9, 10 + index, 100], user_attrs={"train_epochs": 1, "train_flops": 1.0}
        )
        trial.datetime_start = start + datetime.timedelta(seconds=began)
        trial.datetime_complete = start + datetime.timedelta(seconds=ended)
        study.add_trial(trial)
    assert bench.measure(study, (1000, 1000)).first_front_s == 12.5


def test_accuracy_at_a_size_is_measured_at_the_step_plots_shares_too(bench):
    study = study_of((0.8, 2, 1.0), (0.9, 500, 1.0))
    measured = bench.measure(study, (1000, 1000))
    shares = {*bench.SHARES, *bench.CURVE_SHARES}
    assert set(measured.at_size) == {(size, share) for size in bench.SIZES for share in shares}
    assert bench.CURVE_SHARES[0] == pytest.approx(0.002)
    assert measured.best(bench.CURVE_SHARES[0]) == pytest.approx(0.8)  # 2 of 1000 params


# --- seeds that do not pair up -------------------------------------------------------------


def test_equal_flops_refuses_more_studies_than_seeds_measured(bench):
    studies = {"search": [study_of((0.9, 10, 1.0)), study_of((0.8, 10, 1.0))]}
    measured = {"search": [bench.measure(study, (1000, 1000)) for study in studies["search"]]}
    with pytest.raises(ValueError, match="zip"):
        bench.at_equal_flops(studies, measured, [(1000, 1000)])


def test_the_paired_table_refuses_methods_measured_on_different_seed_counts(bench):
    row = bench.Measured(0.5, 60, 0, 1, None, 0.1)
    with pytest.raises(ValueError, match="zip"):
        bench.paired({"other": ([row, row], [row])}, "first", [30])


# --- the tables at their edges -------------------------------------------------------------


def test_the_paired_table_of_one_seed_has_no_standard_error(bench):
    first = bench.Measured(0.6, 60, 0, 1, None, 0.1)
    other = bench.Measured(0.5, 60, 0, 1, None, 0.2)
    assert bench.paired({"other": ([first], [other])}, "first", [30]).splitlines()[2:] == [
        "| 30 | +0.1000 |",
        "| mean | +0.1000 ± nan SE, 1/1 |",
        "| mean regret over first's | 2.00x |",
    ]


def test_a_first_method_without_regret_leaves_the_others_infinitely_far_behind(bench):
    first = [bench.Measured(0.7, 60, 0, 1, None, 0.0)] * 2  # on the best front known
    other = [bench.Measured(0.6, 60, 0, 1, None, 0.1)] * 2
    table = bench.paired({"other": (first, other)}, "first", [30, 31])
    assert table.splitlines()[-1] == "| mean regret over first's | infx |"


def test_the_accuracy_at_a_size_tables_in_full(bench):
    """One seed: none within 0.5 % of the params (a dash, the row going on), one within
    1 % without a test accuracy (kept: the validation accuracy decides), 0.9 (test 0.8)
    elsewhere."""
    at_size = {(size, share): (0.9, 0.8) for size in bench.SIZES for share in bench.SHARES}
    at_size[("nonzero_params", 0.005)] = (NAN, NAN)
    at_size[("nonzero_params", 0.01)] = (0.85, NAN)
    results = {"search": [bench.Measured(0.9, 60, 0, 1, None, at_size=at_size)]}
    rule = "| --- | --- | --- | --- | --- | --- |"
    usual = "0.900 (test 0.800)"
    assert bench.at_size_tables(results) == "\n".join(
        [
            "| method | ≤0.5% parameters | ≤1.0% parameters | ≤2.0% parameters "
            "| ≤5.0% parameters | ≤10.0% parameters |",
            rule,
            f"| search | - | 0.850 (test nan) | {usual} | {usual} | {usual} |",
            "",
            "| method | ≤0.5% FLOPs | ≤1.0% FLOPs | ≤2.0% FLOPs | ≤5.0% FLOPs | ≤10.0% FLOPs |",
            rule,
            f"| search | {' | '.join([usual] * 5)} |",
        ]
    )
