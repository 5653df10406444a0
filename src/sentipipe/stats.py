"""The statistics behind a claim that one model beats another: intervals and paired tests.

- on one split, McNemar's exact test on the examples the two models disagree on;
- across cross-validation folds or repeated hold-out splits, the corrected
  resampled t-test (Nadeau and Bengio, 2003), which widens the naive paired t-test
  for the overlap between training sets;
- intervals: Wilson's for an accuracy on one split, Student's t for a mean over folds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The interval of an accuracy measured on `total` examples."""
    if total == 0:
        return 0.0, 1.0
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict[str, float]:
    """Exact two-sided McNemar test: does A get right what B gets wrong more often than the reverse?"""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else float(stats.binomtest(min(only_a, only_b), n, 0.5).pvalue)
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": min(p, 1.0)}


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its t interval (over folds or seeds)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()) if len(x) else float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def corrected_resampled_ttest(a: Sequence[float], b: Sequence[float], test_fraction: float) -> dict[str, float]:
    """Nadeau and Bengio's corrected resampled t-test of A against B over the same folds or splits.

    `test_fraction` is n_test / n_train of each fold (1/9 for 10-fold CV). Two-sided p-value.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    k = len(d)
    if k < 2:
        return {"mean_difference": float(d.mean()) if k else float("nan"), "t": float("nan"), "p_value": float("nan")}
    variance = d.var(ddof=1) * (1 / k + test_fraction)
    if variance == 0:
        return {"mean_difference": float(d.mean()), "t": float("inf") * np.sign(d.mean()), "p_value": 0.0}
    t = d.mean() / math.sqrt(variance)
    return {"mean_difference": float(d.mean()), "t": float(t), "p_value": float(2 * stats.t.sf(abs(t), k - 1))}


def paired_bootstrap(
    truth: Sequence[int],
    a_pred: Sequence[int],
    b_pred: Sequence[int],
    figure,
    resamples: int = 2000,
    seed: int = 13,
    confidence: float = 0.95,
) -> dict[str, float]:
    """A figure of predictions (`figure(truth, pred)`, e.g. macro recall) for A, B and A - B, resampling the same
    examples for both: A's and B's values with their percentile intervals, and a two-sided p-value for A = B."""
    y, a, b = (np.asarray(x) for x in (truth, a_pred, b_pred))
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(y), size=(resamples, len(y)))
    fa = np.array([figure(y[r], a[r]) for r in rows])
    fb = np.array([figure(y[r], b[r]) for r in rows])
    low, high = 50 * (1 - confidence), 50 * (1 + confidence)
    d = fa - fb
    p = 2 * min((d <= 0).mean(), (d >= 0).mean())
    return {
        "a": float(figure(y, a)),
        "a_interval": [float(np.percentile(fa, low)), float(np.percentile(fa, high))],
        "b": float(figure(y, b)),
        "b_interval": [float(np.percentile(fb, low)), float(np.percentile(fb, high))],
        "difference": float(figure(y, a) - figure(y, b)),
        "difference_interval": [float(np.percentile(d, low)), float(np.percentile(d, high))],
        "p_value": float(min(p, 1.0)),
    }
