"""The cases in other syntax are well-formed and measure words that neither the suite nor training shows."""

import numpy as np

from sentipipe.tasks.classifier import augment, behaviour
from sentipipe.tasks.classifier import behaviour_other_syntax as other

PARTS = ("validation", "held_out")


def test_each_part_has_both_labels_for_every_capability_and_no_case_twice():
    for part in PARTS:
        cases = other.cases(part)
        assert {(c.capability, c.expected) for c in cases} == {
            (cap, label) for cap in other.CAPABILITIES for label in ("positive", "negative")
        }
        texts = [c.text for c in cases]
        assert len(texts) == len(set(texts)), f"{part} has a case twice"
        assert all(t[0].isupper() and t.rstrip()[-1] in ".!?" for t in texts), "each case is one written sentence"
    validation, held = other.cases("validation"), other.cases("held_out")
    assert len(validation) >= 200 and 80 <= len(held) < len(validation)  # a few hundred; the held-out part smaller
    assert not {c.text for c in validation} & {c.text for c in held}


def test_no_part_uses_a_word_of_the_suites_or_of_augmentation_or_of_the_other_part():
    suites = behaviour.words(behaviour.SUITE) | behaviour.words(behaviour.VALIDATION)
    augmentation = set(augment.POSITIVE) | set(augment.NEGATIVE)
    for part in PARTS:
        for case in other.cases(part):
            shared = other.content_words(case.text) & (suites | augmentation)
            assert not shared, f"{part}: {case.text!r} uses {sorted(shared)}"
    assert not other.words("validation") & other.words("held_out")


def test_content_words_read_contractions_as_their_parts_and_drop_syntax():
    assert other.content_words("I can't say I disliked the novel's prose.") == {"say", "disliked", "novel", "prose"}
    assert other.content_words("It isn't that it failed") == set()  # syntax only: "fail" negates what follows


def test_training_never_shows_the_words_of_either_part():
    assert other.words() <= behaviour.held_out()
    assert other.words() == other.words("validation") | other.words("held_out")


def test_the_suite_runner_scores_each_capability_of_a_part():
    held = behaviour.other_syntax("held_out")
    truth = {c.text: c.expected for c in held}
    oracle = lambda texts: np.array([[1.0, 0.0] if truth[t] == "negative" else [0.0, 1.0] for t in texts])  # noqa: E731
    rates, failures = behaviour.run(oracle, ["negative", "positive"], held)
    assert rates == {**dict.fromkeys(other.CAPABILITIES, 1.0), "overall": 1.0} and failures.empty
    always_positive = lambda texts: np.tile([0.0, 1.0], (len(texts), 1))  # noqa: E731
    rates, failures = behaviour.run(always_positive, ["negative", "positive"], held)
    share = np.mean([c.expected == "positive" for c in held])
    assert rates["overall"] == round(share, 4) and len(failures) == sum(c.expected == "negative" for c in held)
