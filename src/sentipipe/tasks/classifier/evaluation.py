"""Metrics, curves and error analysis on held-out predictions.

Every function takes integer labels, a (n, classes) probability matrix and the
class names, so binary and multi-class corpora go through the same code;
areas under curves are one-vs-rest macro averages when there are more than
two classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Gap between confidence and accuracy, weighted over equal-width confidence bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.int64)[labels]


def classification_metrics(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Headline metrics plus per-class precision and recall, as a flat name -> value mapping."""
    k = len(classes)
    predicted = probs.argmax(axis=1)
    present = sorted(set(np.unique(labels).tolist()))
    recalls = [float((predicted[labels == c] == c).mean()) for c in present]
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", labels=list(range(k)), zero_division=0)),
        # recall averaged over the classes present (SemEval's "average recall"): robust to class imbalance
        "macro_recall": float(np.mean(recalls)) if recalls else float("nan"),
    }
    if len(np.unique(labels)) < 2:
        metrics["roc_auc"] = metrics["pr_auc"] = float("nan")
    elif k == 2:
        metrics["roc_auc"] = float(roc_auc_score(labels, probs[:, 1]))
        metrics["pr_auc"] = float(average_precision_score(labels, probs[:, 1]))
    else:
        metrics["roc_auc"] = float(roc_auc_score(labels, probs, multi_class="ovr", labels=list(range(k))))
        metrics["pr_auc"] = float(average_precision_score(_one_hot(labels, k), probs, average="macro"))
    metrics["log_loss"] = float(log_loss(labels, np.clip(probs, 1e-7, 1.0), labels=list(range(k))))
    metrics["ece"] = expected_calibration_error(labels, probs)
    metrics["brier"] = float(((probs - np.eye(k)[labels]) ** 2).sum(axis=1).mean())
    precision, recall, _, _ = precision_recall_fscore_support(labels, predicted, labels=list(range(k)), zero_division=0)
    for i, name in enumerate(classes):
        metrics[f"precision_{name}"] = float(precision[i])
        metrics[f"recall_{name}"] = float(recall[i])
    return metrics


def grouped_metrics(
    labels: np.ndarray, probs: np.ndarray, classes: Sequence[str], groups: Sequence[str]
) -> dict[str, dict[str, float]]:
    """The same metrics per source or group (accuracy and macro-F1 only where a group holds one class)."""
    groups = np.asarray(groups)
    out = {}
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        out[str(group)] = {"rows": int(mask.sum()), **classification_metrics(labels[mask], probs[mask], classes)}
    return out


def confusion_rows(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> list[dict[str, str]]:
    """One row per test example (actual, predicted): the shape DVC's confusion template reads."""
    predicted = probs.argmax(axis=1)
    return [{"actual": classes[a], "predicted": classes[p]} for a, p in zip(labels, predicted)]


def confusion(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    return confusion_matrix(labels, probs.argmax(axis=1), labels=list(range(len(classes))))


def _thin(frame: pd.DataFrame, max_points: int = 400) -> pd.DataFrame:
    step = max(1, len(frame) // max_points)
    return frame.iloc[::step]


def curve_rows(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, list[dict]]:
    """ROC, precision-recall and reliability curves as rows for DVC plots (one series per class)."""
    roc, pr = [], []
    positives = [1] if len(classes) == 2 else range(len(classes))
    for c in positives:
        truth = (labels == c).astype(int)
        if truth.min() == truth.max():
            continue
        fpr, tpr, _ = roc_curve(truth, probs[:, c])
        frame = _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr}))
        roc += [{"class": classes[c], "fpr": float(a), "tpr": float(b)} for a, b in zip(frame.fpr, frame.tpr)]
        precision, recall, _ = precision_recall_curve(truth, probs[:, c])
        frame = _thin(pd.DataFrame({"recall": recall, "precision": precision}))
        pr += [
            {"class": classes[c], "recall": float(r), "precision": float(p)}
            for r, p in zip(frame.recall, frame.precision)
        ]
    return {"roc": roc, "pr": pr}


def reliability_rows(labels: np.ndarray, before: np.ndarray, after: np.ndarray, bins: int = 10) -> list[dict]:
    """Accuracy per confidence bin, before and after calibration: the reliability diagram's two curves."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        row = {"confidence": round(float((lo + hi) / 2), 3), "perfect": round(float((lo + hi) / 2), 3)}
        for name, probs in (("uncalibrated", before), ("calibrated", after)):
            confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
            mask = (confidence > lo) & (confidence <= hi)
            row[name] = round(float(correct[mask].mean()), 4) if mask.any() else None
            row[f"{name}_count"] = int(mask.sum())
        rows.append(row)
    return rows


def confident_errors(
    texts: Sequence[str], labels: np.ndarray, probs: np.ndarray, classes: Sequence[str], limit: int = 50
) -> pd.DataFrame:
    """The wrong predictions the model was surest of: where to look first."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:limit]
    return pd.DataFrame(
        {
            "text": [texts[i] for i in order],
            "label": [classes[labels[i]] for i in order],
            "predicted": [classes[predicted[i]] for i in order],
            "confidence": probs[order, predicted[order]].round(4),
        }
    )
