"""The drift tests of a window: quiet when nothing moved, and each names what did move."""

from __future__ import annotations

import numpy as np
import pytest

from sentipipe.monitoring.drift import TESTS, Features, window_tests


def features(n: int, seed: int, length: float = 20.0, unseen: float = 0.05, shift: float = 0.0, positive=0.5):
    rng = np.random.default_rng(seed)
    tokens = rng.poisson(length, n) + 1
    vector = rng.normal(size=(n, 16)).astype(np.float32)
    vector[:, 0] += shift
    return Features(
        label=np.where(rng.random(n) < positive, "positive", "negative"),
        confidence=rng.beta(5, 1, n) * 0.5 + 0.5,
        tokens=tokens,
        unseen=rng.binomial(tokens, unseen),
        vector=vector,
    )


def test_windows_of_the_reference_distribution_alarm_at_most_at_the_chosen_rate():
    reference = features(2000, 0)
    alarms = [window_tests(reference, features(300, seed), alpha=0.05, seed=seed)["drifted"] for seed in range(1, 61)]
    assert sum(alarms) <= 3, f"{sum(alarms)} of 60 windows alarmed at alpha 0.05"


@pytest.mark.parametrize(
    "moved, change",
    [
        ("length", {"length": 60.0}),
        ("unseen_rate", {"unseen": 0.2}),
        ("sentence_vectors", {"shift": 0.6}),
        ("label_mix", {"positive": 0.8}),
    ],
)
def test_each_kind_of_drift_is_named(moved, change):
    result = window_tests(features(2000, 0), features(300, 1, **change), alpha=0.01)
    assert result["drifted"] and moved in result["moved"], result["moved"]
    assert result["tests"][moved]["p_value"] < result["threshold"] == 0.01 / len(TESTS)


def test_the_classifier_test_reports_its_auc_and_stays_valid_in_high_dimensions():
    rng = np.random.default_rng(3)
    ref, win = features(500, 5), features(500, 6)
    ref.vector, win.vector = rng.normal(size=(500, 384)), rng.normal(size=(500, 384))  # more dims than rows/2
    result = window_tests(ref, win, alpha=0.01)["tests"]["sentence_vectors"]
    assert 0.4 < result["statistic"] < 0.6 and result["p_value"] > 0.01
