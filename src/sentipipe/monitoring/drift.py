"""Drift tests of one window of served traffic against the reference (the champion's validation rows).

Five two-sample tests, each with a p-value, so that one threshold (`monitoring.alpha`,
split over the five by Bonferroni) bounds the false-alarm rate of a window whatever
moved:

- `label_mix`: the predicted labels' counts, chi-square test of homogeneity;
- `confidence`: the top probability, Kolmogorov-Smirnov;
- `length`: tokens per text, Kolmogorov-Smirnov;
- `unseen_rate`: the share of a text's tokens the training vocabulary lacks, Kolmogorov-Smirnov;
- `sentence_vectors`: a classifier two-sample test (Lopez-Paz & Oquab, 2017) on the sentence vectors:
  a logistic regression learns to tell window rows from reference rows on one half, and its scores on
  the other half are ranked (Mann-Whitney U; its AUC is U / n1 n2). Valid at any dimension, and the
  AUC says how separable the two are.

These are scipy's and scikit-learn's implementations, the ones Evidently calls for the same tests.
Evidently itself (0.7.23, the newest on the package index) fails to import under pandas 3
(`pandas.core.dtypes.common.infer_dtype_from_object` is gone), and alibi-detect 0.13 requires
numpy < 2 and pandas < 3; this project runs pandas 3 and numpy 2 (docs/monitoring.md).

The reference is validation data, not training data: on training rows the network's confidence is
inflated by fitting, and no training word is unseen by construction, so every window of in-domain
traffic would look drifted against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

TESTS = ("label_mix", "confidence", "length", "unseen_rate", "sentence_vectors")


@dataclass
class Features:
    """What drift compares, one entry per text (from the log, or the champion scoring reference texts)."""

    label: np.ndarray  # str
    confidence: np.ndarray  # the top probability
    tokens: np.ndarray
    unseen: np.ndarray
    vector: np.ndarray  # (n, d)

    def __len__(self) -> int:
        return len(self.label)

    @property
    def unseen_rate(self) -> np.ndarray:
        return self.unseen / np.maximum(self.tokens, 1)

    def take(self, rows: np.ndarray) -> Features:
        return Features(*(getattr(self, f)[rows] for f in ("label", "confidence", "tokens", "unseen", "vector")))


def _share(labels: np.ndarray, classes: list[str]) -> str:
    counts = {c: float(np.mean(labels == c)) for c in classes}
    return ", ".join(f"{c} {v:.0%}" for c, v in counts.items())


def label_mix(ref: Features, win: Features) -> dict:
    classes = sorted(set(ref.label) | set(win.label))
    table = np.array([[np.sum(x.label == c) for c in classes] for x in (ref, win)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        p, statistic = 1.0, 0.0
    else:
        statistic, p, _, _ = stats.chi2_contingency(table)
    return {
        "statistic": float(statistic),
        "p_value": float(p),
        "reference": _share(ref.label, classes),
        "window": _share(win.label, classes),
        "what": "the predicted labels' mix",
    }


def _ks(ref: np.ndarray, win: np.ndarray, what: str, fmt) -> dict:
    result = stats.ks_2samp(ref, win)
    return {
        "statistic": float(result.statistic),
        "p_value": float(result.pvalue),
        "reference": fmt(ref),
        "window": fmt(win),
        "what": what,
    }


def sentence_vectors(ref: Features, win: Features, seed: int = 0) -> dict:
    """The classifier two-sample test: fit on half the rows, rank the held-out half's scores."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - sklearn is heavy; only monitor needs it
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    x = np.concatenate([ref.vector, win.vector]).astype(np.float64)
    y = np.r_[np.zeros(len(ref)), np.ones(len(win))]
    fit = np.zeros(len(y), dtype=bool)
    for cls in (0, 1):  # half of each side to fit, half to test
        rows = rng.permutation(np.flatnonzero(y == cls))
        fit[rows[: len(rows) // 2]] = True
    scaler = StandardScaler().fit(x[fit])
    model = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced")
    model.fit(scaler.transform(x[fit]), y[fit])
    held = ~fit
    scores = model.decision_function(scaler.transform(x[held]))
    positive, negative = scores[y[held] == 1], scores[y[held] == 0]
    u, p = stats.mannwhitneyu(positive, negative, alternative="greater")
    auc = float(u / (len(positive) * len(negative)))
    return {
        "statistic": auc,
        "p_value": float(p),
        "reference": "AUC 0.5 (indistinguishable)",
        "window": f"AUC {auc:.3f}",
        "what": "the sentence vectors (a classifier tells the window from the reference)",
    }


def window_tests(ref: Features, win: Features, alpha: float, seed: int = 0) -> dict:
    """Every test of one window; `drifted` when any p-value is under alpha / number of tests."""
    threshold = alpha / len(TESTS)
    results = {
        "label_mix": label_mix(ref, win),
        "confidence": _ks(
            ref.confidence, win.confidence, "the top probability", lambda v: f"median {np.median(v):.3f}"
        ),
        "length": _ks(ref.tokens, win.tokens, "tokens per text", lambda v: f"median {np.median(v):.0f} tokens"),
        "unseen_rate": _ks(
            ref.unseen_rate,
            win.unseen_rate,
            "the share of tokens the training vocabulary lacks",
            lambda v: f"mean {np.mean(v):.1%}",
        ),
        "sentence_vectors": sentence_vectors(ref, win, seed),
    }
    for result in results.values():
        result["moved"] = result["p_value"] < threshold
    moved = [name for name, r in results.items() if r["moved"]]
    return {"tests": results, "threshold": threshold, "drifted": bool(moved), "moved": moved}
