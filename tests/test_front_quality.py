"""Front quality on the normalised scale the benchmark compares studies on."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from nas.report.front_quality import (
    best_accuracy_within,
    hypervolume,
    hypervolume_history,
    non_dominated,
    normalised_objectives,
)


def finished(values):
    return optuna.trial.create_trial(values=list(values))


def test_objectives_are_error_and_shares_of_the_reference():
    trials = [
        finished((0.9, 50, 2000)),
        optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL),
    ]
    points = normalised_objectives(trials, reference_params=100, reference_flops=4000)
    np.testing.assert_allclose(points, [[0.1, 0.5, 0.5]])


def test_hypervolume_of_boxes_from_the_reference_point():
    assert hypervolume(np.array([[0.5, 0.5, 0.5]])) == pytest.approx(0.125)
    two = np.array([[0.5, 0.5, 0.5], [0.0, 0.75, 0.75]])  # overlap 0.5 * 0.25 * 0.25
    assert hypervolume(two) == pytest.approx(0.125 + 1.0 * 0.25 * 0.25 - 0.5 * 0.25 * 0.25)
    assert hypervolume(np.array([[0.1, 1.2, 0.1]])) == 0.0  # bigger than the reference
    assert hypervolume(np.empty((0, 3))) == 0.0


def test_best_accuracy_within_a_share_of_the_reference_parameters():
    points = np.array([[0.03, 0.5, 0.5], [0.08, 0.09, 0.2], [0.2, 0.015, 0.1]])
    assert best_accuracy_within(points, 0.10) == pytest.approx(0.92)
    assert best_accuracy_within(points, 0.02) == pytest.approx(0.80)
    assert best_accuracy_within(points, 0.01) == 0.0


def test_non_dominated_keeps_the_rows_no_other_row_beats_and_ties_alike():
    points = np.array([[0.1, 0.5], [0.2, 0.2], [0.2, 0.6], [0.5, 0.1], [0.2, 0.2]])
    # row 2 is beaten by rows 0, 1 and 4; the tied rows 1 and 4 beat neither
    assert non_dominated(points) == [0, 1, 3, 4]


def test_the_hypervolume_history_counts_feasible_points_only_and_grows_with_the_front():
    points = np.array([
        [0.5, 0.5, 0.5],  # 0.125
        [0.1, 0.1, 0.1],  # over budget: not counted
        [0.6, 0.6, 0.6],  # dominated: no change
        [0.5, 0.5, 0.2],  # dominates the first
        [0.2, 0.9, 0.9],  # a new corner
    ])  # fmt: skip
    history = hypervolume_history(points, [True, False, True, True, True])

    assert history[:4] == pytest.approx([0.125, 0.125, 0.125, 0.2])
    assert history[4] == pytest.approx(hypervolume(points[[0, 2, 3, 4]]))
    assert history[4] > history[3]
    assert hypervolume_history(points[:0], []) == []
