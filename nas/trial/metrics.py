"""What pruning preserved beyond accuracy: per-class quality, agreement with the dense
parent, and calibration, from the validation logits of the pruned and the dense model."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ECE_BINS = 15


def preservation_metrics(
    pruned_logits: torch.Tensor, dense_logits: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> dict[str, float]:
    """The pruned model's preservation measures, by name:

    - `macro_f1`: unweighted mean of the per-class F1 over every class that occurs in the
      labels or the predictions (a class predicted but absent from the labels scores 0; one
      in neither has no F1 and is left out), as scikit-learn's `f1_score(average="macro")`
      and torchmetrics' `MulticlassF1Score(average="macro")`;
    - `worst_class_accuracy`: the lowest per-class recall over the classes in the labels;
    - `agreement`: share of samples whose top-1 prediction equals the dense model's;
    - `kl_divergence`: KL(dense || pruned) of the predictive distributions in nats, averaged
      over the samples (torch's `kl_div(reduction="batchmean")`);
    - `ece`: expected calibration error of the pruned model (`expected_calibration_error`)."""
    pruned_logits, dense_logits = pruned_logits.float(), dense_logits.float()
    predicted = pruned_logits.argmax(dim=1)
    confusion = torch.bincount(labels * n_classes + predicted, minlength=n_classes**2)
    confusion = confusion.reshape(n_classes, n_classes).double()
    true_positives = confusion.diag()
    support, predicted_count = confusion.sum(dim=1), confusion.sum(dim=0)
    recall = true_positives / support.clamp(min=1)
    precision = true_positives / predicted_count.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    in_labels = support > 0
    in_labels_or_predictions = in_labels | (predicted_count > 0)
    dense_log_probs = F.log_softmax(dense_logits, dim=1)
    kl = F.kl_div(F.log_softmax(pruned_logits, dim=1), dense_log_probs, log_target=True,
                  reduction="batchmean")  # fmt: skip
    return {
        "macro_f1": float(f1[in_labels_or_predictions].mean()),
        "worst_class_accuracy": float(recall[in_labels].min()),
        "agreement": float((predicted == dense_logits.argmax(dim=1)).float().mean()),
        "kl_divergence": float(kl),
        "ece": expected_calibration_error(pruned_logits, labels),
    }


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Expected calibration error (Guo et al. 2017; torchmetrics' `MulticlassCalibrationError`
    with norm="l1"): over `ECE_BINS` equal-width bins of top-1 confidence, [k/15, (k+1)/15)
    with 1 in the last, the sum of |accuracy - mean confidence| in each bin weighted by the
    bin's share of the samples."""
    confidence, predicted = F.softmax(logits.float(), dim=1).max(dim=1)
    correct = (predicted == labels).float()
    bins = torch.clamp((confidence * ECE_BINS).long(), max=ECE_BINS - 1)
    error = torch.zeros((), dtype=torch.float64)
    for b in bins.unique():
        members = bins == b
        gap = (correct[members].mean() - confidence[members].mean()).abs()
        error += members.float().mean() * gap
    return float(error)


@torch.no_grad()
def logits_of(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """The model's outputs on `x`, in eval mode, batch by batch. Batches of 128, near the
    training batch: on a CPU, the activations of much larger batches are fresh allocations
    (page faults) on every pass; after training, a pass over 750 MNIST images in batches of
    1024 took twice as long as in batches of 128 (benchmarks/overhead.py)."""
    model.eval()
    return torch.cat(
        [model(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
    )


def top1_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows of `logits` whose largest entry is at the label."""
    return int((logits.argmax(dim=1) == labels).sum()) / len(labels)
