"""A membership attack's grades (the harness's binary-decision metrics, bundled for the family)."""

from __future__ import annotations

import numpy as np

from recsec.harness.metrics import accuracy, balanced_accuracy, precision, recall, roc_auc, tpr_at_fpr


def membership_metrics(scores: np.ndarray, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """A membership attack's grades: `roc_auc` and TPR at 1% FPR from its scores, the rest from its
    decisions. `balanced_accuracy` is what the published code calls "AUC"."""
    return {
        "roc_auc": roc_auc(scores, labels),
        "tpr_at_1pct_fpr": tpr_at_fpr(scores, labels, 0.01),
        "balanced_accuracy": balanced_accuracy(predictions, labels),
        "accuracy": accuracy(predictions, labels),
        "precision": precision(predictions, labels),
        "recall": recall(predictions, labels),
    }
