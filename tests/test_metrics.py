"""Preservation metrics: per-class quality, agreement with the dense parent, calibration."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import f1_score, recall_score

from nas.trial.metrics import expected_calibration_error, preservation_metrics
from nas.trial.objectives import DIRECTIONS


def logits_for(predictions: list[int], n_classes: int = 2, margin: float = 4.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predictions), n_classes).float() * margin


def logits_with_confidence(predictions: list[int], confidences: list[float]) -> torch.Tensor:
    """Two-class logits whose softmax puts `confidences` on `predictions` (each above 1/2)."""
    log_odds = torch.tensor([math.log(c / (1 - c)) for c in confidences])
    return torch.nn.functional.one_hot(torch.tensor(predictions), 2).float() * log_odds[:, None]


# The dense predictions of the second case differ from the labels, so agreement with them
# (1/2) differs from both the pruned and the dense model's accuracy (3/4 each).
@pytest.mark.parametrize(
    ("dense_predictions", "agreement"), [([0, 0, 1, 1], 0.75), ([1, 0, 1, 1], 0.5)]
)
def test_per_class_scores_and_agreement_on_a_hand_checked_case(dense_predictions, agreement):
    labels = torch.tensor([0, 0, 1, 1])
    pruned, dense = logits_for([0, 1, 1, 1]), logits_for(dense_predictions)
    metrics = preservation_metrics(pruned, dense, labels, n_classes=2)
    # class 0: precision 1, recall 1/2, F1 2/3; class 1: precision 2/3, recall 1, F1 4/5
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert metrics["worst_class_accuracy"] == 0.5
    assert metrics["agreement"] == agreement
    assert metrics["kl_divergence"] > 0


def test_agreement_counts_matches_with_the_dense_predictions_not_with_the_labels():
    labels = torch.tensor([0, 0, 1, 1])
    dense = logits_for([1, 0, 1, 0])  # accuracy 1/2
    pruned = logits_for([1, 0, 0, 0])  # accuracy 1/4; same top-1 as dense on 3 of 4
    assert preservation_metrics(pruned, dense, labels, n_classes=2)["agreement"] == 0.75


@pytest.mark.parametrize(
    ("labels", "predictions", "n_classes"),
    [
        # class 2 is predicted but absent from the labels: F1 (2/3 + 1 + 0) / 3, not 5/6
        ([0, 0, 1, 1], [0, 2, 1, 1], 3),
        ([0, 0, 1, 1], [0, 2, 1, 1], 5),  # and classes 3 and 4 in neither
        ([0, 0, 0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1, 2, 0], 4),
    ],
)
def test_macro_f1_is_scikit_learns(labels, predictions, n_classes):
    metrics = preservation_metrics(
        logits_for(predictions, n_classes),
        logits_for(labels, n_classes),
        torch.tensor(labels),
        n_classes,
    )
    assert metrics["macro_f1"] == pytest.approx(f1_score(labels, predictions, average="macro"))


def test_worst_class_accuracy_is_the_lowest_recall_of_the_pruned_model_over_the_labels():
    labels = [0, 0, 0, 0, 1, 1, 2, 2]
    pruned = [0, 0, 0, 1, 1, 1, 2, 0]  # recall 3/4, 1, 1/2; precision 3/4, 2/3, 1
    dense = [0, 0, 0, 1, 1, 1, 2, 2]  # recall 3/4, 1, 1
    metrics = preservation_metrics(
        logits_for(pruned, 4), logits_for(dense, 4), torch.tensor(labels), n_classes=4
    )  # class 3 occurs nowhere: it has no recall
    assert metrics["worst_class_accuracy"] == 0.5
    assert metrics["worst_class_accuracy"] == min(recall_score(labels, pruned, average=None))


def test_kl_divergence_is_kl_of_dense_against_pruned_as_a_batch_mean():
    dense = torch.zeros(4, 2)  # (1/2, 1/2) on every sample
    pruned = logits_with_confidence([0, 0, 0, 0], [0.8, 0.5, 0.5, 0.5])  # (0.8, 0.2) on one
    metrics = preservation_metrics(pruned, dense, torch.tensor([0, 1, 0, 1]), n_classes=2)
    # KL(dense || pruned) of the first sample; the other three contribute nothing.
    first = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)  # 0.223; the reverse 0.193
    assert metrics["kl_divergence"] == pytest.approx(first / 4, rel=1e-5)


def test_a_pruned_model_that_keeps_the_dense_ones_predictions_is_better_in_every_direction():
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    dense = logits_for([0, 1, 0, 1, 0, 1], margin=20.0)
    kept = preservation_metrics(dense, dense, labels, n_classes=2)
    damaged = preservation_metrics(logits_for([0, 0, 0, 0, 1, 1], margin=20.0), dense, labels, 2)
    for name in kept:
        better, worse = (kept, damaged) if DIRECTIONS[name] == "maximize" else (damaged, kept)
        assert better[name] > worse[name], name


def test_identical_predictions_have_no_divergence():
    logits = torch.randn(50, 10)
    metrics = preservation_metrics(logits, logits, torch.randint(0, 10, (50,)), n_classes=10)
    assert metrics["agreement"] == 1.0
    assert metrics["kl_divergence"] == pytest.approx(0.0, abs=1e-6)


def test_calibration_error_is_the_gap_between_confidence_and_accuracy():
    labels = torch.tensor([0, 1, 0, 1])
    certain_half_right = logits_for([0, 0, 0, 0], margin=100.0)  # confidence 1, accuracy 1/2
    assert expected_calibration_error(certain_half_right, labels) == pytest.approx(0.5)
    certain_all_right = logits_for([0, 1, 0, 1], margin=100.0)
    assert expected_calibration_error(certain_all_right, labels) == pytest.approx(0.0, abs=1e-6)
    unsure = torch.zeros(4, 2)  # confidence 1/2 and, taking class 0, accuracy 1/2
    assert math.isclose(expected_calibration_error(unsure, labels), 0.0, abs_tol=1e-6)
    # Over-confidence in one bin is not cancelled by under-confidence in another: confidence
    # 0.9 with accuracy 0.7 and confidence 0.7 with accuracy 0.9 (overall both 0.8).
    labels = torch.zeros(20, dtype=torch.long)
    predictions = [0] * 7 + [1] * 3 + [0] * 9 + [1]
    two_bins = logits_with_confidence(predictions, [0.9] * 10 + [0.7] * 10)
    assert expected_calibration_error(two_bins, labels) == pytest.approx(0.2, abs=1e-5)


def test_calibration_error_weights_each_bin_by_its_share_of_the_samples():
    # Three samples at confidence 0.9, two right (gap 0.9 - 2/3); one at 0.7, right (gap 0.3).
    labels = torch.zeros(4, dtype=torch.long)
    logits = logits_with_confidence([0, 0, 1, 0], [0.9, 0.9, 0.9, 0.7])
    expected = 3 / 4 * (0.9 - 2 / 3) + 1 / 4 * 0.3  # 0.25; unweighted mean 0.267, one bin 0.1
    assert expected_calibration_error(logits, labels) == pytest.approx(expected, abs=1e-5)
