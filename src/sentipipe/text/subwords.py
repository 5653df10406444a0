"""Vectors for words the vocabulary lacks, from the character n-grams they share with words it has.

A typo ("terible"), an inflection ("unwatchably") or a rare compound shares most
of its character trigrams with words seen in training. Such a word gets the
mean of its closest vocabulary words' vectors, weighted by how many trigrams
they share (Dice's coefficient); a word that shares too little with any (a
new name, say) stays `<unk>`, as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

MIN_LENGTH = 3  # shorter words carry too few trigrams to judge


def trigrams(word: str) -> set[str]:
    padded = f"<{word}>"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


class SubwordIndex:
    """Vocabulary words by their character trigrams; `neighbours` finds the closest to an unseen word."""

    def __init__(self, tokens: Sequence[str], first_word: int = 2, k: int = 3, min_score: float = 0.6):
        self.k, self.min_score = k, min_score
        self.grams: dict[str, list[int]] = defaultdict(list)
        self.sizes = np.zeros(len(tokens), dtype=np.int32)
        for i, token in enumerate(tokens[first_word:], start=first_word):
            if len(token) >= MIN_LENGTH and token.isalpha():
                grams = trigrams(token)
                self.sizes[i] = len(grams)
                for gram in grams:
                    self.grams[gram].append(i)

    def neighbours(self, word: str) -> list[tuple[int, float]]:
        """Up to k vocabulary ids with their Dice scores (best first), only those of at least min_score."""
        if len(word) < MIN_LENGTH or not word.isalpha():
            return []
        grams = trigrams(word)
        shared: dict[int, int] = defaultdict(int)
        for gram in grams:
            for i in self.grams.get(gram, ()):
                shared[i] += 1
        scored = [(i, 2 * n / (len(grams) + int(self.sizes[i]))) for i, n in shared.items()]
        scored = [(i, s) for i, s in scored if s >= self.min_score]
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        return scored[: self.k]

    def vector(self, word: str, matrix: np.ndarray) -> np.ndarray | None:
        """The score-weighted mean of the neighbours' rows of `matrix`, or None when there are none."""
        found = self.neighbours(word)
        if not found:
            return None
        ids, weights = zip(*found, strict=True)
        w = np.asarray(weights, dtype=np.float32)
        return (matrix[list(ids)] * w[:, None]).sum(axis=0) / w.sum()
