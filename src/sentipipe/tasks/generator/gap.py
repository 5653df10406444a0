"""An interval on the difference of two models' bits over the same stream: a block bootstrap.

Units of a text are not independent (a hard passage is hard for both models, and for many units
on end), so resampling single positions would give too narrow an interval. The stream is cut into
`blocks` contiguous blocks of (nearly) equal length; each resample draws that many blocks with
replacement and takes the difference of mean bits over all units drawn (a ratio of sums, so
blocks of unequal length weigh by their length). The interval is the resamples' percentiles.
numpy only; seeded, so the same arrays give the same interval.
"""

from __future__ import annotations

import numpy as np


def block_bootstrap(
    a_bits: np.ndarray,
    b_bits: np.ndarray,
    blocks: int = 100,
    resamples: int = 2000,
    seed: int = 13,
    confidence: float = 0.95,
    scale: float = 1.0,
) -> dict[str, float | int | list[float]]:
    """Mean of a_bits - b_bits (position by position, the same stream) times `scale`, and its interval.

    `scale` converts units to what is reported (1 / characters per unit: bits per character).
    """
    a, b = np.asarray(a_bits, dtype=np.float64), np.asarray(b_bits, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"two equally long, non-empty 1-d arrays are needed, not {a.shape} and {b.shape}")
    count = max(1, min(blocks, len(a)))
    parts = np.array_split(a - b, count)
    sums = np.array([p.sum() for p in parts])
    sizes = np.array([len(p) for p in parts], dtype=np.float64)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, count, size=(resamples, count))
    means = sums[drawn].sum(axis=1) / sizes[drawn].sum(axis=1) * scale
    low, high = np.percentile(means, [50 * (1 - confidence), 50 * (1 + confidence)])
    return {
        "difference": round(float((a - b).mean() * scale), 6),
        "interval": [round(float(low), 6), round(float(high), 6)],
        "confidence": confidence,
        "blocks": count,
        "resamples": resamples,
        "positions": len(a),
    }
