"""Metrics on held-out predictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score


def classification_metrics(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """accuracy, macro-F1 and ROC-AUC (one-vs-rest when there are more than two classes)."""
    predicted = probs.argmax(axis=1)
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", labels=list(range(len(classes))))),
    }
    present = np.unique(labels)
    if len(present) < 2:
        metrics["roc_auc"] = float("nan")
    elif len(classes) == 2:
        metrics["roc_auc"] = float(roc_auc_score(labels, probs[:, 1]))
    else:
        metrics["roc_auc"] = float(roc_auc_score(labels, probs, multi_class="ovr", labels=list(range(len(classes)))))
    return metrics


def confusion_rows(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> list[dict[str, str]]:
    """One row per test example (actual, predicted): the shape DVC's confusion template reads."""
    predicted = probs.argmax(axis=1)
    return [{"actual": classes[a], "predicted": classes[p]} for a, p in zip(labels, predicted, strict=False)]


def confusion(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> list[list[int]]:
    return confusion_matrix(labels, probs.argmax(axis=1), labels=list(range(len(classes)))).tolist()
