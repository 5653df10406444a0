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


def trigrams(word: str) -> set[str]:
    padded = f"<{word}>"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


class SubwordIndex:
    """Vocabulary words by their spelling; `neighbours` finds the closest to an unseen word.

    `tokens` in vocabulary order: most frequent first, after the `first_word` special tokens.
    """

    def __init__(self, tokens: Sequence[str], first_word: int = 2, k: int = 3, min_score: float = 0.6):
        self.k, self.min_score = k, min_score
        self.grams: dict[str, list[int]] = defaultdict(list)
        self.sizes = np.zeros(len(tokens), dtype=np.int32)
        self.ids: dict[str, int] = {}  # words an unseen word may be one edit from
        letters: set[str] = set()
        for i, token in enumerate(tokens[first_word:], start=first_word):
            if len(token) >= MIN_LENGTH and token.isalpha():
                grams = trigrams(token)
                self.sizes[i] = len(grams)
                for gram in grams:
                    self.grams[gram].append(i)
            if len(token) >= MIN_EDIT_LENGTH - 1 and token.isalpha():
                self.ids.setdefault(token, i)
                letters.update(token)
        self.letters = "".join(sorted(letters))

    def one_edit_away(self, word: str) -> list[int]:
        """Vocabulary ids of the words one edit from `word`, most frequent first.

        Every string one edit away is looked up (about 50 per letter of the word, well under a
        millisecond): no index to build, which keeps a cold `sentipipe predict` quick.
        """
        if len(word) < MIN_EDIT_LENGTH or not word.isalpha():
            return []
        splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
        edits = {a + b[1:] for a, b in splits if b}
        edits.update(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1)
        edits.update(a + c + b[1:] for a, b in splits if b for c in self.letters)
        edits.update(a + c + b for a, b in splits for c in self.letters)
        edits.discard(word)
        return sorted(self.ids[e] for e in edits if e in self.ids)

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
