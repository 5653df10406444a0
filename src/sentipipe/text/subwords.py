"""Vectors for words the vocabulary lacks, from their spelling: one slip away, or the character n-grams they share.

A slip of the fingers (a letter dropped, added, changed, or two neighbours
swapped: "terible", "dredaful") is one edit from a word seen in training: such a
word gets that word's vector (the most frequent one, if several are one edit
away). A swap in the middle of a word breaks half its trigrams, so trigrams
alone miss it. Otherwise an inflection ("unwatchably") or a rare compound
shares most of its character trigrams with words seen in training: it gets the
mean of its closest vocabulary words' vectors, weighted by how many trigrams
they share (Dice's coefficient). A word that is neither (a new name, say) stays
`<unk>`, as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

MIN_LENGTH = 3  # shorter words carry too few trigrams to judge
MIN_EDIT_LENGTH = 5  # one edit from a shorter word is too often another word ("bad" -> "bed", "good" -> "goad")


def deletions(word: str) -> set[str]:
    """The word with one letter left out, each way."""
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def one_edit(a: str, b: str) -> bool:
    """True when b is a with one letter dropped, added or changed, or two neighbours swapped (a != b)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return short in deletions(long)


def trigrams(word: str) -> set[str]:
    padded = f"<{word}>"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


class SubwordIndex:
    """Vocabulary words by their spelling; `neighbours` finds the closest to an unseen word.

    `tokens` in vocabulary order: most frequent first, after the `first_word` special tokens.
    """

    def __init__(self, tokens: Sequence[str], first_word: int = 2, k: int = 3, min_score: float = 0.6):
        self.k, self.min_score = k, min_score
        self.tokens = list(tokens)
        self.grams: dict[str, list[int]] = defaultdict(list)
        self.sizes = np.zeros(len(tokens), dtype=np.int32)
        self.ids: dict[str, int] = {}
        self.by_deletion: dict[str, list[int]] = defaultdict(list)  # a word less one letter -> the words
        for i, token in enumerate(tokens[first_word:], start=first_word):
            if len(token) >= MIN_LENGTH and token.isalpha():
                grams = trigrams(token)
                self.sizes[i] = len(grams)
                for gram in grams:
                    self.grams[gram].append(i)
            if len(token) >= MIN_EDIT_LENGTH - 1 and token.isalpha():
                self.ids.setdefault(token, i)  # an unseen word may be one of these with a letter added
            if len(token) >= MIN_EDIT_LENGTH and token.isalpha():
                for shorter in deletions(token):
                    self.by_deletion[shorter].append(i)

    def one_edit_away(self, word: str) -> list[int]:
        """Vocabulary ids of the words one edit from `word` (symmetric deletions, then checked), most frequent first."""
        if len(word) < MIN_EDIT_LENGTH or not word.isalpha():
            return []
        found = set(self.by_deletion.get(word, ()))  # a letter added to the word
        for shorter in deletions(word):
            found.update(self.by_deletion.get(shorter, ()))  # changed or swapped
            if shorter in self.ids:
                found.add(self.ids[shorter])  # a letter dropped from the word
        return sorted(i for i in found if one_edit(word, self.tokens[i]))

    def neighbours(self, word: str) -> list[tuple[int, float]]:
        """The most frequent vocabulary word one edit away (score 1), else up to k ids by Dice score
        (best first), only those of at least min_score."""
        if len(word) < MIN_LENGTH or not word.isalpha():
            return []
        close = self.one_edit_away(word)
        if close:
            return [(close[0], 1.0)]
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
