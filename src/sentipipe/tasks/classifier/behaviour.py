"""A behavioural test suite for sentiment classifiers, in the manner of CheckList (Ribeiro et al., 2020).

Cases come from templates and word lists written for this suite alone (the
distillation's augmentation uses other lists), generated deterministically:
the same few hundred cases every run. Two kinds:

- minimum functionality: the expected label is known (negation, contrast,
  intensity, very short and very long texts);
- invariance: a change that must not move the label (a typo, a name, a number);
  the case passes when the label of the changed text equals that of the original.

Two lexicons fill the same templates: `SUITE`, the test (reported; training
never sees its words), and `VALIDATION`, words shared with neither the suite nor
augmentation, for what may be chosen on (the register gate's floor, params).
Cases in the syntax these templates do not use (verbs, idioms, double negation,
other domains) are behaviour_other_syntax.py's: `other_syntax("validation")` to
choose on, `other_syntax("held_out")` never chosen on.

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

from sentipipe.tasks.classifier import behaviour_other_syntax


@dataclass(frozen=True)
class Lexicon:
    """The words the templates are filled with."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]
    subjects: tuple[str, ...]
    praise: tuple[str, ...]
    complaints: tuple[str, ...]
    names: tuple[str, ...]
    filler: tuple[str, ...]
    short: tuple[tuple[str, str], ...]
    intensifiers: tuple[str, ...]
    downtoners: tuple[str, ...]


# The suite: the test. Training never sees its words (augment.py's lists and the rule clauses avoid them).
SUITE = Lexicon(
    positive=("wonderful", "superb", "delightful", "brilliant", "charming", "excellent", "moving", "gripping"),
    negative=("dreadful", "tedious", "awful", "clumsy", "lifeless", "boring", "terrible", "pointless"),
    subjects=("the film", "this movie", "the acting", "the script", "the story"),
    praise=("the cast is terrific", "the ending is beautiful", "it is a real pleasure", "the score is lovely"),
    complaints=(
        "the pacing is sluggish",
        "the dialogue is wooden",
        "it is a chore to sit through",
        "the plot is a mess",
    ),
    names=("Maria", "Kenji", "Olusegun", "Ingrid", "Rahul", "Chloe"),
    filler=(
        "The story is set in a small coastal town during one long winter.",
        "Most of the scenes were shot on location with a handheld camera.",
        "The running time is a little over two hours, with one intermission.",
        "Several of the actors appeared together in an earlier production.",
    ),
    short=(
        *[("superb!", "positive"), ("loved it", "positive"), ("a gem.", "positive"), ("wonderful", "positive")],
        *[("must see", "positive"), ("pure joy", "positive"), ("so good", "positive"), ("bravo!", "positive")],
        *[("awful.", "negative"), ("hated it", "negative"), ("a dud.", "negative"), ("dreadful", "negative")],
        *[("skip it", "negative"), ("total mess", "negative"), ("so dull", "negative"), ("yawn.", "negative")],
    ),
    intensifiers=("very", "really", "truly", "remarkably"),
    downtoners=("somewhat", "fairly", "a bit", "rather"),
)

# The same templates with other words, shared with neither the suite nor augmentation: a validation
# suite, to choose on (the rule clauses' share, a gate) without looking at the test.
VALIDATION = Lexicon(
    positive=("fantastic", "marvelous", "splendid", "exquisite", "riveting", "enchanting", "dazzling", "masterful"),
    negative=("atrocious", "dismal", "insipid", "lousy", "abysmal", "laborious", "plodding", "vapid"),
    subjects=("the picture", "the screenplay", "the direction", "the soundtrack", "the premise"),
    praise=("the photography is gorgeous", "the leads are perfectly chosen", "the jokes land", "the finale soars"),
    complaints=("the editing is choppy", "the middle drags", "the gags misfire", "the villain is cartoonish"),
    names=("Tomasz", "Aisha", "Diego", "Yuki", "Fatima", "Lars"),
    filler=(
        "The director grew up in a mining village near the northern border.",
        "Filming took eleven weeks in three countries.",
        "The cinematographer used mostly natural light and old lenses.",
        "Its first cut was screened at a festival last autumn.",
    ),
    short=(
        *[("marvelous!", "positive"), ("adored it", "positive"), ("a treasure.", "positive"), ("splendid", "positive")],
        *[("highly recommended", "positive"), ("sheer delight", "positive"), ("a blast", "positive")],
        *[("encore!", "positive"), ("atrocious.", "negative"), ("loathed it", "negative"), ("a flop.", "negative")],
        *[("dismal", "negative"), ("avoid it", "negative"), ("utter garbage", "negative"), ("a snooze", "negative")],
        *[("zzz.", "negative")],
    ),
    intensifiers=("extremely", "incredibly", "genuinely", "thoroughly"),
    downtoners=("slightly", "mildly", "marginally", "moderately"),
)


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


def cases(lexicon: Lexicon = SUITE) -> list[Case]:
    x = lexicon
    out: list[Case] = []
    add = out.append
    for subject, word in itertools.product(x.subjects[:4], x.positive):
        add(Case("negation_of_positive", f"{subject} is not {word}.", "negative"))
    for word in x.positive:
        add(Case("negation_of_positive", f"I would not call it {word} at all.", "negative"))
        add(Case("negation_of_positive", f"Nothing about it was {word}.", "negative"))
    for subject, word in itertools.product(x.subjects[:4], x.negative):
        add(Case("negation_of_negative", f"{subject} is not {word}.", "positive"))
    for word in x.negative:
        add(Case("negation_of_negative", f"not {word} at all.", "positive"))
        add(Case("negation_of_negative", f"It was never {word} for a moment.", "positive"))
    for praise, complaint in itertools.product(x.praise, x.complaints):
        add(Case("contrast", f"{complaint}, but {praise}.", "positive"))
        add(Case("contrast", f"{praise}, but {complaint}.", "negative"))
        add(Case("contrast", f"Although {complaint}, {praise}.", "positive"))
        add(Case("contrast", f"{praise}, yet {complaint}.", "negative"))
    for word, adverb in itertools.product(x.positive[::2], x.intensifiers + x.downtoners):
        add(Case("intensity", f"The film is {adverb} {word}.", "positive"))
    for word, adverb in itertools.product(x.negative[::2], x.intensifiers + x.downtoners):
        add(Case("intensity", f"The film is {adverb} {word}.", "negative"))
    for word, subject in itertools.product(x.positive + x.negative, x.subjects[:3]):
        original = f"{subject} is {word}."
        add(Case("typo", f"{subject} is {_typo(word)}.", None, original))
    for name, word in itertools.product(x.names, x.positive[:3] + x.negative[:3]):
        add(Case("names_and_numbers", f"{name}'s new film is {word}.", None, f"{x.names[0]}'s new film is {word}."))
    for n, word in itertools.product(("2", "7", "15", "40"), x.positive[3:6] + x.negative[3:6]):
        add(
            Case(
                "names_and_numbers",
                f"I saw it {n} times and it was {word}.",
                None,
                f"I saw it 3 times and it was {word}.",
            )
        )
    for text, label in x.short:
        add(Case("short", text, label))
    for k, (word, label) in enumerate([(w, "positive") for w in x.positive] + [(w, "negative") for w in x.negative]):
        filler = " ".join(x.filler[(k + i) % len(x.filler)] for i in range(12))
        add(Case("long", f"{filler} All in all, the film is {word}. {filler}", label))
    return out


def words(lexicon: Lexicon = SUITE) -> set[str]:
    """Every word the suite's cases use, lower-cased: what augmentation must not teach."""
    return {w for case in cases(lexicon) for w in re.findall(r"[a-z']+", case.text.lower())}


def other_syntax(part: str = "validation") -> list[Case]:
    """Cases in syntax the templates above do not use: "validation" (to choose on) or "held_out" (never)."""
    return [Case(*case) for case in behaviour_other_syntax.cases(part)]


def held_out() -> set[str]:
    """The words of every behavioural set (both suites, both parts of the other syntax's, content words only
    there): what augmentation must not teach, so that each measures what was not shown."""
    return words(SUITE) | words(VALIDATION) | behaviour_other_syntax.words()


def applicable(labels: Sequence[str]) -> bool:
    return {"positive", "negative"} <= set(labels)


def run(
    predict: Callable[[list[str]], np.ndarray], labels: Sequence[str], lexicon: Lexicon | Sequence[Case] = SUITE
) -> tuple[dict[str, float], pd.DataFrame]:
    """Pass rates per capability and overall, and the failed cases; `predict` gives probabilities.

    `lexicon`: the templates filled with a lexicon's words, or cases of their own (`other_syntax`).
    """
    suite = cases(lexicon) if isinstance(lexicon, Lexicon) else list(lexicon)
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
