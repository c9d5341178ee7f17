"""Preservation metrics: per-class quality, agreement with the dense parent, calibration."""

from __future__ import annotations

import math

import pytest
import torch

from nas.trial.metrics import expected_calibration_error, preservation_metrics


def logits_for(predictions: list[int], n_classes: int = 2, margin: float = 4.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predictions), n_classes).float() * margin


def test_per_class_scores_and_agreement_on_a_hand_checked_case():
    labels = torch.tensor([0, 0, 1, 1])
    pruned, dense = logits_for([0, 1, 1, 1]), logits_for([0, 0, 1, 1])
    metrics = preservation_metrics(pruned, dense, labels, n_classes=2)
    # class 0: precision 1, recall 1/2, F1 2/3; class 1: precision 2/3, recall 1, F1 4/5
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert metrics["worst_class_accuracy"] == 0.5
    assert metrics["agreement"] == 0.75
    assert metrics["kl_divergence"] > 0


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
