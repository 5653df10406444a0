"""An interpolated Kneser-Ney n-gram model over unit ids: the generator's reference.

Counts are numpy arrays keyed by the n-gram's ids read as one base-V integer,
so fitting a million characters and scoring a split take seconds. One fit at
the largest order scores every order up to it (`bits_per_unit(stream, order)`),
so the order can be chosen on validation data.
"""

from __future__ import annotations

import math

import numpy as np


def _codes(stream: np.ndarray, length: int, base: int) -> np.ndarray:
    """The base-`base` code of the `length`-gram ending at each position from length-1 on."""
    n = len(stream) - length + 1
    code = np.zeros(max(n, 0), dtype=np.int64)
    for j in range(length):
        code = code * base + stream[j : j + n]
    return code


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=np.float64)
    pos = np.clip(np.searchsorted(keys, queries), 0, len(keys) - 1)
    return np.where(keys[pos] == queries, values[pos], 0).astype(np.float64)


def _discount(counts: np.ndarray) -> float:
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 + n2 else 0.5


class KneserNey:
    """Interpolated Kneser-Ney: raw counts at the top order, continuation counts below, uniform at the bottom."""

    def __init__(self, vocab_size: int, max_order: int = 6):
        if max_order < 1:
            raise ValueError("max_order must be at least 1")
        # keep base**order inside int64
        self.max_order = min(max_order, max(1, int(62 * math.log(2) / math.log(max(vocab_size, 2)))))
        self.vocab_size = vocab_size

    def fit(self, stream: np.ndarray, pad_id: int) -> KneserNey:
        base, n = self.vocab_size, self.max_order
        s = np.concatenate([np.full(n - 1, pad_id, dtype=np.int64), stream.astype(np.int64)])
        # raw[m]: sorted keys and counts of every m-gram
        self.raw = {}
        for m in range(1, n + 1):
            keys, counts = np.unique(_codes(s, m, base), return_counts=True)
            self.raw[m] = (keys, counts)
        # continuation[m] (m < n): distinct left neighbours of each m-gram, from the (m+1)-grams
        self.cont = {}
        for m in range(1, n):
            keys_up = self.raw[m + 1][0]
            keys, counts = np.unique(keys_up % (base**m), return_counts=True)
            self.cont[m] = (keys, counts)
        self._pad = pad_id
        return self

    def _level(self, m: int, top: int):
        """Order m's n-gram keys and counts, context keys, totals and types, and discount, below order `top`."""
        keys, counts = self.raw[m] if m == top else self.cont[m]
        contexts = keys // self.vocab_size
        ctx_keys, start = np.unique(contexts, return_index=True)
        totals = np.add.reduceat(counts, start) if len(counts) else counts
        types = np.diff(np.append(start, len(keys)))
        return keys, counts, ctx_keys, totals, types, _discount(counts)

    def probabilities(self, stream: np.ndarray, order: int | None = None) -> np.ndarray:
        """P(unit_i | the order-1 units before it) for every position i of the stream."""
        top = min(order or self.max_order, self.max_order)
        base = self.vocab_size
        s = np.concatenate([np.full(top - 1, self._pad, dtype=np.int64), stream.astype(np.int64)])
        prob = np.full(len(stream), 1.0 / base)
        for m in range(1, top + 1):
            keys, counts, ctx_keys, totals, types, d = self._level(m, top)
            grams = _codes(s, m, base)[top - m :]
            ctx = grams // base
            c = _lookup(keys, counts, grams)
            total = _lookup(ctx_keys, totals, ctx)
            n_types = _lookup(ctx_keys, types, ctx)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = np.maximum(c - d, 0.0) / safe + d * n_types / safe * prob
            prob = np.where(seen, mixed, prob)
        return prob

    def bits_per_unit(self, stream: np.ndarray, order: int | None = None) -> float:
        return float(-np.log2(self.probabilities(stream, order)).mean())


def best_order(model: KneserNey, val: np.ndarray) -> tuple[int, dict[int, float]]:
    """The order with the lowest validation bits per unit, and every order's figure."""
    scores = {m: model.bits_per_unit(val, m) for m in range(1, model.max_order + 1)}
    return min(scores, key=scores.get), scores
