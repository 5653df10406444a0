"""A behavioural test suite for sentiment classifiers, in the manner of CheckList (Ribeiro et al., 2020).

Cases come from templates and word lists written for this suite alone (the
distillation's augmentation uses other lists), generated deterministically:
the same few hundred cases every run. Two kinds:

- minimum functionality: the expected label is known (negation, contrast,
  intensity, very short and very long texts);
- invariance: a change that must not move the label (a typo, a name, a number);
  the case passes when the label of the changed text equals that of the original.

The suite needs the labels `positive` and `negative`; a classifier without
them (another task) is reported as not applicable.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

POSITIVE_WORDS = ["wonderful", "superb", "delightful", "brilliant", "charming", "excellent", "moving", "gripping"]
NEGATIVE_WORDS = ["dreadful", "tedious", "awful", "clumsy", "lifeless", "boring", "terrible", "pointless"]
SUBJECTS = ["the film", "this movie", "the acting", "the script", "the story"]
PRAISE = ["the cast is terrific", "the ending is beautiful", "it is a real pleasure", "the score is lovely"]
COMPLAINTS = ["the pacing is sluggish", "the dialogue is wooden", "it is a chore to sit through", "the plot is a mess"]
NAMES = ["Maria", "Kenji", "Olusegun", "Ingrid", "Rahul", "Chloe"]
FILLER = [
    "The story is set in a small coastal town during one long winter.",
    "Most of the scenes were shot on location with a handheld camera.",
    "The running time is a little over two hours, with one intermission.",
    "Several of the actors appeared together in an earlier production.",
]
SHORT = [("superb!", "positive"), ("loved it", "positive"), ("a gem.", "positive"), ("wonderful", "positive")]
SHORT += [("must see", "positive"), ("pure joy", "positive"), ("so good", "positive"), ("bravo!", "positive")]
SHORT += [("awful.", "negative"), ("hated it", "negative"), ("a dud.", "negative"), ("dreadful", "negative")]
SHORT += [("skip it", "negative"), ("total mess", "negative"), ("so dull", "negative"), ("yawn.", "negative")]
INTENSIFIERS = ["very", "really", "truly", "remarkably"]
DOWNTONERS = ["somewhat", "fairly", "a bit", "rather"]


@dataclass(frozen=True)
class Case:
    capability: str
    text: str
    expected: str | None  # None: an invariance case, compared with `original`
    original: str | None = None


def _typo(word: str) -> str:
    """Swap the two letters in the middle of the word: a slip of the fingers."""
    i = len(word) // 2 - 1
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def cases() -> list[Case]:
    out: list[Case] = []
    add = out.append
    for subject, word in itertools.product(SUBJECTS[:4], POSITIVE_WORDS):
        add(Case("negation_of_positive", f"{subject} is not {word}.", "negative"))
    for word in POSITIVE_WORDS:
        add(Case("negation_of_positive", f"I would not call it {word} at all.", "negative"))
        add(Case("negation_of_positive", f"Nothing about it was {word}.", "negative"))
    for subject, word in itertools.product(SUBJECTS[:4], NEGATIVE_WORDS):
        add(Case("negation_of_negative", f"{subject} is not {word}.", "positive"))
    for word in NEGATIVE_WORDS:
        add(Case("negation_of_negative", f"not {word} at all.", "positive"))
        add(Case("negation_of_negative", f"It was never {word} for a moment.", "positive"))
    for praise, complaint in itertools.product(PRAISE, COMPLAINTS):
        add(Case("contrast", f"{complaint}, but {praise}.", "positive"))
        add(Case("contrast", f"{praise}, but {complaint}.", "negative"))
        add(Case("contrast", f"Although {complaint}, {praise}.", "positive"))
        add(Case("contrast", f"{praise}, yet {complaint}.", "negative"))
    for word, adverb in itertools.product(POSITIVE_WORDS[::2], INTENSIFIERS + DOWNTONERS):
        add(Case("intensity", f"The film is {adverb} {word}.", "positive"))
    for word, adverb in itertools.product(NEGATIVE_WORDS[::2], INTENSIFIERS + DOWNTONERS):
        add(Case("intensity", f"The film is {adverb} {word}.", "negative"))
    for word, subject in itertools.product(POSITIVE_WORDS + NEGATIVE_WORDS, SUBJECTS[:3]):
        original = f"{subject} is {word}."
        add(Case("typo", f"{subject} is {_typo(word)}.", None, original))
    for name, word in itertools.product(NAMES, POSITIVE_WORDS[:3] + NEGATIVE_WORDS[:3]):
        add(Case("names_and_numbers", f"{name}'s new film is {word}.", None, f"{NAMES[0]}'s new film is {word}."))
    for n, word in itertools.product(("2", "7", "15", "40"), POSITIVE_WORDS[3:6] + NEGATIVE_WORDS[3:6]):
        add(
            Case(
                "names_and_numbers",
                f"I saw it {n} times and it was {word}.",
                None,
                f"I saw it 3 times and it was {word}.",
            )
        )
    for text, label in SHORT:
        add(Case("short", text, label))
    for k, (word, label) in enumerate(
        [(w, "positive") for w in POSITIVE_WORDS] + [(w, "negative") for w in NEGATIVE_WORDS]
    ):
        filler = " ".join(FILLER[(k + i) % len(FILLER)] for i in range(12))
        add(Case("long", f"{filler} All in all, the film is {word}. {filler}", label))
    return out


def words() -> set[str]:
    """Every word the suite's cases use, lower-cased: what augmentation must not teach."""
    return {w for case in cases() for w in re.findall(r"[a-z']+", case.text.lower())}


def applicable(labels: Sequence[str]) -> bool:
    return {"positive", "negative"} <= set(labels)


def run(predict: Callable[[list[str]], np.ndarray], labels: Sequence[str]) -> tuple[dict[str, float], pd.DataFrame]:
    """Pass rates per capability and overall, and the failed cases; `predict` gives probabilities."""
    suite = cases()
    originals = sorted({c.original for c in suite if c.original})
    texts = [c.text for c in suite] + originals
    predicted = [labels[i] for i in np.asarray(predict(texts)).argmax(axis=1)]
    by_text = dict(zip(texts, predicted, strict=True))
    rows = []
    for case in suite:
        got = by_text[case.text]
        want = case.expected if case.expected is not None else by_text[case.original]
        rows.append({"capability": case.capability, "text": case.text, "expected": want, "predicted": got})
    frame = pd.DataFrame(rows)
    frame["passed"] = frame["expected"] == frame["predicted"]
    rates = {k: round(float(v), 4) for k, v in frame.groupby("capability", sort=True)["passed"].mean().items()}
    rates["overall"] = round(float(frame["passed"].mean()), 4)
    return rates, frame[~frame["passed"]].drop(columns="passed").reset_index(drop=True)
