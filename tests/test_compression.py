"""The front read as a compression curve: the best validation accuracy within a share of
the reference's size, and the test accuracy of that same trial."""

from __future__ import annotations

import math

import pytest
from optuna.trial import TrialState, create_trial

from nas.report.compression import accuracy_at_sizes, at_size_table, compression_curve

NAMES = ("accuracy", "nonzero_params", "flops")
REFERENCE = {"nonzero_params": 10_000, "flops": 1_000_000}
# number: (validation accuracy, test accuracy, nonzero params, FLOPs)
TRIALS = {
    0: (0.90, 0.80, 40, 30_000),  # 0.4 % of the parameters, 3 % of the FLOPs
    1: (0.95, 0.97, 150, 4_000),  # 1.5 %, 0.4 %
    2: (0.93, 0.99, 90, 9_000),  # 0.9 %, 0.9 %: less accurate than 1, test better
    3: (0.99, 0.98, 900, 200_000),  # 9 %, 20 %
}


def trials():
    return [
        create_trial(
            state=TrialState.COMPLETE, values=[accuracy, params, flops],
            user_attrs={"test_accuracy": test},
        )  # fmt: skip
        for accuracy, test, params, flops in TRIALS.values()
    ]


def test_each_share_holds_the_most_accurate_trial_on_validation_not_on_test():
    found = trials()
    rows = {(r.size, r.share): r for r in accuracy_at_sizes(found, REFERENCE, NAMES)}
    expected = {  # (size, share): trial index, computed by hand from TRIALS
        ("nonzero_params", 0.005): 0,
        ("nonzero_params", 0.01): 2,
        ("nonzero_params", 0.02): 1,  # 0.95 beats trial 2's 0.93, whose test is higher
        ("nonzero_params", 0.05): 1,
        ("nonzero_params", 0.10): 3,
        ("flops", 0.005): 1,
        ("flops", 0.01): 1,
        ("flops", 0.02): 1,
        ("flops", 0.05): 1,  # trial 0 fits from 3 %, but is less accurate
        ("flops", 0.10): 1,
    }
    for key, index in expected.items():
        assert rows[key].trial is found[index], key
        assert rows[key].accuracy == TRIALS[index][0]
        assert rows[key].test_accuracy == TRIALS[index][1]


def test_a_share_nothing_fits_in_is_empty():
    rows = accuracy_at_sizes(trials()[3:], REFERENCE, NAMES, shares=(0.01,))
    for row in rows:
        assert row.trial is None and math.isnan(row.accuracy) and math.isnan(row.test_accuracy)
    assert at_size_table(rows).splitlines()[1].split() == ["1.0%", "|", "-", "-", "-", "|",
                                                           "-", "-", "-"]  # fmt: skip


def test_the_curve_steps_up_where_a_larger_trial_is_more_accurate():
    curve = compression_curve(trials(), REFERENCE, NAMES, "nonzero_params")
    assert curve.shares == pytest.approx([0.004, 0.009, 0.015, 0.09])
    assert curve.accuracies == [0.90, 0.93, 0.95, 0.99]
    assert curve.test_accuracies == [0.80, 0.99, 0.97, 0.98]
