"""Interpolated modified Kneser-Ney n-grams over unit ids: the generator's reference.

Chen and Goodman (1998): three discounts per order (for n-grams seen once,
twice, three times or more), estimated from that order's counts of counts;
raw counts at the highest order, continuation counts (distinct left
neighbours) below it, the uniform distribution at the bottom.

An n-gram is keyed by a 64-bit hash of its ids, so any order fits in memory
and time linear in the stream (a collision among millions of n-grams is about
a one-in-a-million chance, and would merge two counts). The order is searched
on validation data: orders grow until validation stops improving
(`search_order`), so the best order is found, not assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_PRIME = np.uint64(0x9E3779B97F4A7C15)
_MASK = (1 << 64) - 1


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: the polynomial hash's bits spread, so near keys do not cluster."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def discounts(counts: np.ndarray) -> tuple[float, float, float]:
    """D1, D2, D3+ from the counts of counts n1..n4 (Chen and Goodman, eq. 26).

    With too few n-grams for all four (a tiny corpus), the one-discount estimate Y
    serves for all three, and 0.5 where Y cannot be estimated either (no n-gram seen once).
    """
    n = [int((counts == k).sum()) for k in (1, 2, 3, 4)]
    y = n[0] / (n[0] + 2 * n[1]) if n[0] else 0.5
    if min(n) == 0:
        return y, y, y
    d1 = 1 - 2 * y * n[1] / n[0]
    d2 = 2 - 3 * y * n[2] / n[1]
    d3 = 3 - 4 * y * n[3] / n[2]
    return max(d1, 0.0), max(d2, 0.0), max(d3, 0.0)


@dataclass
class _Level:
    """One order's distinct n-grams: sorted keys, counts (uint32: exact, and half of float64's bytes; read as
    float64), and the key of each one's context (dropped once the context statistics are built from it)."""

    keys: np.ndarray
    counts: np.ndarray
    contexts: np.ndarray | None


def _level(grams: np.ndarray, contexts: np.ndarray) -> _Level:
    keys, first, counts = np.unique(grams, return_index=True, return_counts=True)
    if len(grams) >= 2**32:
        raise ValueError(f"a stream of {len(grams)} units: at most 2^32 - 1 are counted")
    return _Level(keys, counts.astype(np.uint32), contexts[first])


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=np.float64)
    pos = np.clip(np.searchsorted(keys, queries), 0, len(keys) - 1)
    return np.where(keys[pos] == queries, values[pos], 0).astype(np.float64)


def _next_hash(previous: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Order m+1's polynomial hash at each position from order m's at the position before."""
    h = np.zeros(len(ids), dtype=np.uint64)
    with np.errstate(over="ignore"):
        h[1:] = previous[:-1] * _PRIME
        return h + ids


def _shift(keys: np.ndarray, fill: np.uint64) -> np.ndarray:
    """The key at the position before each position (the context of the unit there)."""
    return np.concatenate([[fill], keys[:-1]])


class KneserNey:
    """Interpolated modified Kneser-Ney; orders grow one at a time, and any order fitted can be scored."""

    def __init__(self, vocab_size: int, max_order: int = 6, history: int | None = None, lean: bool = False):
        """`lean`: keep the raw counts of the two highest orders only (a model of order m scores with order m's
        raw counts and the continuation counts below it; an order search compares the newest two), so a
        model some twenty orders deep holds one table an order instead of two."""
        if max_order < 1:
            raise ValueError("max_order must be at least 1")
        self.vocab_size, self.target, self.lean = vocab_size, max_order, lean
        self.history = max(history or max_order, max_order)  # start-of-stream padding: the longest context

    def fit(self, stream: np.ndarray, pad_id: int) -> KneserNey:
        self._pad = pad_id
        s = np.concatenate([np.full(self.history, pad_id, dtype=np.int64), stream.astype(np.int64)])
        self._ids = s.astype(np.uint64) + np.uint64(1)
        self._hash = np.zeros(len(s), dtype=np.uint64)
        self._keys = [_mix(self._hash)]  # the keys of the last two orders, newest last
        # raw[m]: every m-gram's count; cont[m]: how many distinct units precede each m-gram
        self.raw: dict[int, _Level] = {}
        self.cont: dict[int, _Level] = {}
        self._stats: dict[tuple[int, bool], tuple] = {}  # a level's discounts and context stats, once computed
        self.max_order = 0
        while self.max_order < self.target:
            self.grow()
        return self

    def grow(self) -> None:
        """Fit one order more: its raw counts, and the continuation counts of the order below."""
        m = self.max_order + 1
        if m > self.history:
            raise ValueError(f"order {m} needs more history than the {self.history} units fitted for")
        self._hash = _next_hash(self._hash, self._ids)
        keys = _mix(self._hash)
        valid = slice(self.history, None)  # positions of the stream itself, not its padding
        below = self._keys[-1]
        self.raw[m] = _level(keys[valid], _shift(below, below[0])[valid])
        if m > 1:
            grams, first = np.unique(keys[valid], return_index=True)
            lower = self._keys[-2]
            self.cont[m - 1] = _level(below[valid][first], _shift(lower, lower[0])[valid][first])
        self._keys = [below, keys]
        self.max_order = m
        if self.lean:
            self.forget(m - 2)

    def forget(self, order: int) -> None:
        """Drop order's raw counts and their statistics: only a model scored at that order reads them."""
        self.raw.pop(order, None)
        self._stats.pop((order, True), None)

    def _context_stats(self, level: _Level):
        """Per context: total count, and how many n-grams follow it once, twice, three times or more."""
        order = np.argsort(level.contexts, kind="stable")
        ctx, counts = level.contexts[order], level.counts[order]
        ctx_keys, start = np.unique(ctx, return_index=True)
        # integers, read as float64 (exact): totals as uint32; the followers of one context number at most the
        # vocabulary, so uint16 holds them (a quarter of float64's bytes) wherever they fit
        sums = [
            np.add.reduceat(x, start, dtype=np.uint64) if len(x) else x.astype(np.uint64)
            for x in (counts, counts == 1, counts == 2, counts >= 3)
        ]
        fits = [np.uint16 if len(x) == 0 or x.max() < 2**16 else np.uint32 for x in sums[1:]]
        return ctx_keys, sums[0].astype(np.uint32), *(x.astype(t) for x, t in zip(sums[1:], fits, strict=True))

    def _level_stats(self, m: int, top: int) -> tuple[_Level, tuple[float, float, float], tuple]:
        """Order m's level as read by a model of order `top` (raw counts at the top, continuation below)."""
        if m == top and m not in self.raw:
            raise ValueError(f"order {m}'s raw counts were not kept (a lean model scores its top two orders only)")
        level = self.raw[m] if m == top else self.cont[m]
        key = (m, m == top)
        if key not in self._stats:  # a level never changes once fitted, so its statistics are kept
            self._stats[key] = (discounts(level.counts), self._context_stats(level))
            level.contexts = None  # read once, for the statistics: a uint64 an n-gram no longer held
        d, stats = self._stats[key]
        return level, d, stats

    def probabilities(self, stream: np.ndarray, order: int | None = None) -> np.ndarray:
        """P(unit_i | the order-1 units before it) for every position i of the stream."""
        top = min(order or self.max_order, self.max_order)
        s = np.concatenate([np.full(top, self._pad, dtype=np.int64), stream.astype(np.int64)])
        ids = s.astype(np.uint64) + np.uint64(1)
        valid = slice(top, None)
        h = np.zeros(len(s), dtype=np.uint64)
        below = _mix(h)
        prob = np.full(len(stream), 1.0 / self.vocab_size)
        for m in range(1, top + 1):
            h = _next_hash(h, ids)
            keys = _mix(h)
            level, (d1, d2, d3), (ctx_keys, totals, ones, twos, more) = self._level_stats(m, top)
            contexts = _shift(below, below[0])[valid]
            c = _lookup(level.keys, level.counts, keys[valid])
            total = _lookup(ctx_keys, totals, contexts)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            d = np.select([c == 0, c == 1, c == 2], [0.0, d1, d2], d3)
            followers = [_lookup(ctx_keys, x, contexts) for x in (ones, twos, more)]
            gamma = (d1 * followers[0] + d2 * followers[1] + d3 * followers[2]) / safe
            prob = np.where(seen, np.maximum(c - d, 0.0) / safe + gamma * prob, prob)
            below = keys
        return prob

    def distribution(self, context: Sequence[int], order: int | None = None) -> np.ndarray:
        """P(w | the last order-1 units of `context`) for every unit w: what `probabilities` gives w there.

        The context is padded on the left as the stream is (a generator's prompt starts with <eos>).
        """
        top = min(order or self.max_order, self.max_order)
        recent = [int(u) for u in context][max(0, len(context) - (top - 1)) :] if top > 1 else []
        recent = [self._pad] * (top - 1 - len(recent)) + recent
        # the polynomial hash of the last m-1 units (as _next_hash builds it) for m = 1..top, in Python's
        # integers: each order adds the next older unit in front, times the prime to the power of its place
        hashes, h, power, prime = [0], 0, 1, int(_PRIME)
        for u in reversed(recent):
            h = (h + (u + 1) * power) & _MASK
            power = (power * prime) & _MASK
            hashes.append(h)
        candidates = np.arange(1, self.vocab_size + 1, dtype=np.uint64)  # unit id + 1, as the hashes read it
        context_keys = _mix(np.array(hashes, dtype=np.uint64))
        prob = np.full(self.vocab_size, 1.0 / self.vocab_size)
        for m in range(1, top + 1):
            level, (d1, d2, d3), (ctx_keys, totals, ones, twos, more) = self._level_stats(m, top)
            at = min(int(np.searchsorted(ctx_keys, context_keys[m - 1])), len(ctx_keys) - 1)
            if len(ctx_keys) == 0 or ctx_keys[at] != context_keys[m - 1] or totals[at] <= 0:
                continue  # a context never seen: this order adds nothing
            total = totals[at]
            with np.errstate(over="ignore"):
                keys = _mix(np.uint64(hashes[m - 1]) * _PRIME + candidates)
            c = _lookup(level.keys, level.counts, keys)
            d = np.select([c == 0, c == 1, c == 2], [0.0, d1, d2], d3)
            gamma = (d1 * ones[at] + d2 * twos[at] + d3 * more[at]) / total
            prob = np.maximum(c - d, 0.0) / total + gamma * prob
        return prob


def search_order(
    train: np.ndarray, val: np.ndarray, vocab_size: int, pad_id: int, limit: int = 30
) -> tuple[KneserNey, int, dict[int, float], dict[int, np.ndarray]]:
    """Grow the order while validation bits per unit improve; return the fit, the best order, every score and
    every order's probabilities of the validation units.

    The model is lean: it keeps the raw counts of its top two orders, the best (the one before the last, or
    the last at the limit) among them; the validation probabilities of every order are kept instead (a
    float64 a unit an order, against tables of every distinct n-gram of the training stream an order).
    `limit` is a safety net on memory and time, not a guess at the best order: reaching it is reported.
    """
    model = KneserNey(vocab_size, 1, history=limit, lean=True).fit(train, pad_id)
    probabilities = {1: model.probabilities(val, 1)}
    scores = {1: _bits(probabilities[1])}
    while model.max_order < limit:
        model.grow()
        order = model.max_order
        probabilities[order] = model.probabilities(val, order)
        scores[order] = _bits(probabilities[order])
        if scores[order] >= scores[order - 1]:
            break
    return model, min(scores, key=scores.get), scores, probabilities


def _bits(probabilities: np.ndarray) -> float:
    return float(-np.log2(probabilities).mean())
