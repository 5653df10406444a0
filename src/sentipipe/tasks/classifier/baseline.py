"""The reference every classifier must beat: TF-IDF word and character n-grams, logistic regression.

One definition, shared by the evaluate stage, the registry's baseline gate and
the benches: word 1-2 grams and character 2-5 grams (within word boundaries),
sublinear term frequencies, L2-regularised logistic regression whose C is
chosen on the validation split from the same grid every time, on the figure the
registry judges by (accuracy, or recall averaged over the classes for a corpus
judged on it); with imbalanced classes, balanced class weights are tried too.
The classifier's own knobs are chosen on validation data too, so the two get
the same kind of tuning; test data decides nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)


METRICS = ("accuracy", "macro_recall", "macro_f1")
IMBALANCE = 1.2  # largest over smallest class count above which balanced class weights join the grid


def figure(metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """Accuracy, recall averaged over the classes present, or macro-F1 of integer predictions."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if metric == "accuracy":
        return float((truth == predicted).mean())
    classes = np.unique(truth)
    recall = [float((predicted[truth == c] == c).mean()) for c in classes]
    if metric == "macro_recall":
        return float(np.mean(recall))
    precision = [float((truth[predicted == c] == c).mean()) if (predicted == c).any() else 0.0 for c in classes]
    return float(np.mean([2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(precision, recall)]))


def tuning_metric(register_metric: str) -> str:
    """The figure the baseline is tuned on: the registry's, when it is one of these; else accuracy."""
    key = register_metric.removeprefix("val_")
    return key if key in METRICS else "accuracy"


@dataclass
class Baseline:
    """A fitted reference: its C and class weights (chosen on validation) and every candidate's figure."""

    word: TfidfVectorizer
    char: TfidfVectorizer
    model: LogisticRegression
    c: float
    val_by_candidate: dict[str, float]  # every candidate's validation figure (`metric`), by "C" or "C balanced"
    metric: str = "accuracy"
    class_weight: str = "none"

    def features(self, texts: Sequence[str]):
        return hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities in the order of the classes' indices (the labels the classifier uses)."""
        return self.model.predict_proba(self.features(texts))


def grid(train_labels: np.ndarray) -> list[tuple[float, str]]:
    """Every (C, class weights) candidate: the C grid, and balanced weights too when the classes are imbalanced."""
    counts = np.bincount(np.asarray(train_labels))
    counts = counts[counts > 0]
    weights = ["none", "balanced"] if counts.max() > IMBALANCE * counts.min() else ["none"]
    return [(c, w) for w in weights for c in C_GRID]


def fit(
    train_texts: Sequence[str],
    train_labels: np.ndarray,
    val_texts: Sequence[str],
    val_labels: np.ndarray,
    metric: str = "accuracy",
) -> Baseline:
    """Fit the features on train, try every candidate, keep the best on validation `metric` (ties: the smaller C)."""
    if metric not in METRICS:
        raise ValueError(f"baseline metric {metric!r}: one of {METRICS}")
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    x_train = hstack([word.fit_transform(train_texts), char.fit_transform(train_texts)]).tocsr()
    x_val = hstack([word.transform(val_texts), char.transform(val_texts)]).tocsr()
    scores, models = {}, {}
    candidates = grid(train_labels)
    for weights in dict.fromkeys(w for _, w in candidates):
        # C ascending, each fit warm-started from the last: the same optimum (the loss is convex), far fewer
        # iterations at large C, where a cold start crawls on long documents and many classes
        model = LogisticRegression(max_iter=3000, warm_start=True, class_weight=None if weights == "none" else weights)
        for c in sorted(c for c, w in candidates if w == weights):
            model.set_params(C=c).fit(x_train, train_labels)
            models[c, weights] = copy.deepcopy(model)
            scores[c, weights] = figure(metric, val_labels, model.predict(x_val))
    best = max(candidates, key=lambda k: (scores[k], k[1] == "none", -k[0]))
    by_c = {(f"{c:g}" if w == "none" else f"{c:g} {w}"): v for (c, w), v in scores.items()}
    return Baseline(word, char, models[best], best[0], by_c, metric, best[1])
