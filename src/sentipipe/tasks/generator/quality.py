"""Cheap signals of a generator's samples beside bits per character: real words, loops, variety.

Words are lowercased runs of letters and digits, apostrophes inside them kept ("don't"); everything
else (spaces, punctuation) separates them. Of a sample only the continuation counts, not the prompt:
a word counts when at least one of its characters was generated (a char model may finish the
prompt's last word), and a word cut off by the end of the sample (no separator after it) does not.

- `in_vocabulary`: the share of those words that occur in the training text (1.0: no invented words);
- `repeated_3grams`: the share of word 3-grams of a sample that repeat an earlier 3-gram of the same
  sample (a loop such as "the film is the film is" scores high), pooled over the samples;
- `distinct_2`: distinct word 2-grams over all 2-grams, pooled over the samples (Li et al., 2016):
  low when the samples say the same things.

Pooled means a ratio of totals (not a mean of per-sample ratios), so short samples weigh little.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def words(text: str) -> list[str]:
    """The lowercased words of a text."""
    return [w.lower() for w in WORD.findall(text)]


def vocabulary(texts: Iterable[str]) -> set[str]:
    """Every word of the texts."""
    found: set[str] = set()
    for text in texts:
        found.update(words(text))
    return found


def generated_words(prompt: str, continuation: str) -> list[str]:
    """The words of `prompt + continuation` with a generated character, a word cut off at the end left out."""
    text, start = prompt + continuation, len(prompt)
    return [m.group().lower() for m in WORD.finditer(text) if m.end() > start and m.end() < len(text)]


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def sample_quality(samples: Sequence[tuple[str, str]], vocab: set[str]) -> dict[str, float | int]:
    """The signals of (prompt, continuation) pairs; a ratio with nothing to count is 0.0."""
    total = known = grams3 = repeated = 0
    grams2: list[tuple[str, ...]] = []
    for prompt, continuation in samples:
        ws = generated_words(prompt, continuation)
        total += len(ws)
        known += sum(w in vocab for w in ws)
        seen: set[tuple[str, ...]] = set()
        for gram in _ngrams(ws, 3):
            repeated += gram in seen
            seen.add(gram)
            grams3 += 1
        grams2 += _ngrams(ws, 2)
    return {
        "samples": len(samples),
        "words": total,
        "in_vocabulary": round(known / total, 6) if total else 0.0,
        "repeated_3grams": round(repeated / grams3, 6) if grams3 else 0.0,
        "distinct_2": round(len(set(grams2)) / len(grams2), 6) if grams2 else 0.0,
    }
