"""Distillation's augmentation never teaches the behavioural suite's words."""

import re

import numpy as np

from sentipipe.tasks.classifier import augment, behaviour


def _suite_words() -> set[str]:
    words: set[str] = set()
    for case in behaviour.cases():
        words |= set(re.findall(r"[a-z]+", case.text.lower()))
    return words


def test_augmentation_adjectives_share_no_word_with_any_suite_case():
    shared = (set(augment.POSITIVE) | set(augment.NEGATIVE)) & _suite_words()
    assert shared == set(), f"augment.py word lists overlap the behavioural suite: {sorted(shared)}"


def test_opposite_adjective_edits_only_insert_augmentation_words():
    rng = np.random.default_rng(0)
    texts = [
        (["the", "plot", "is", "great", "."], [True, True, True, False, False]),
        (["a", "bland", "and", "lazy", "film"], [True, True, True, True, False]),
    ]
    edits = augment.contrast(texts, np.array([1, 0]), rng)
    swapped = [words for words, _, kind in edits if kind == "opposite_adjective"]
    assert len(swapped) == 2
    new = {
        w for words, (orig, _) in zip(swapped, texts, strict=True) for w, o in zip(words, orig, strict=True) if w != o
    }
    assert new and new <= set(augment.POSITIVE) | set(augment.NEGATIVE)
    assert not new & _suite_words()
