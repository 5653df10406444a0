"""Distillation's augmentation never teaches the behavioural suite's words."""

import numpy as np

from sentipipe.tasks.classifier import augment, behaviour


def test_augmentation_adjectives_share_no_word_with_any_suite_case():
    shared = (set(augment.POSITIVE) | set(augment.NEGATIVE)) & behaviour.words()
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
    assert not new & behaviour.words()


def _rule_label(words: list[str], polarity: dict[str, int]) -> int:
    adjective = next(w for w in words if w in polarity)
    return polarity[adjective] ^ any(w in ("not", "never", "n't") for w in words)


def test_rule_clauses_are_labelled_by_rule_and_use_no_suite_subject_or_adjective():
    texts = [
        "the setup is thin .".split(),
        "this flick was a mess .".split(),
        "the film is long .".split(),  # the suite's subject: never mined
        "the picture is thin .".split(),  # the validation suite's: never mined either
        "their chemistry is n't there .".split(),
    ]
    vocab = set(augment.POSITIVE) | set(augment.NEGATIVE) | {"not", "never", "n't", "is", "was", "."}
    exclude = behaviour.held_out()
    rows = augment.rule_clauses(texts, vocab, 600, np.random.default_rng(0), exclude)
    assert len(rows) == 600
    polarity = {**{w: 1 for w in augment.POSITIVE}, **{w: 0 for w in augment.NEGATIVE}}
    single, negated, joined = 0, 0, 0
    for words, label in rows:
        assert not set(words) & exclude - {"the", "this", "is", "was", "not", "never", "it", "but", "yet", "although"}
        if "," in words:  # "A , but B", "A , yet B", "although A , B": B decides, and A says the opposite
            joined += 1
            cut = words.index(",")
            first, second = words[1:cut] if words[0] == "although" else words[:cut], words[cut + 1 :]
            second = second[1:] if second[0] in ("but", "yet") else second
            assert label == _rule_label(second, polarity) != _rule_label(first, polarity), words
        else:
            single += 1
            negated += any(w in ("not", "never", "n't") for w in words)
            assert label == _rule_label(words, polarity), words
    assert 0.65 < negated / single < 0.85  # a quarter affirmed: a negator is no cue on its own
    assert 0.25 < joined / len(rows) < 0.42
    subjects = {tuple(words[:2]) for words, _ in rows}
    assert ("the", "setup") in subjects and ("this", "flick") in subjects
    assert ("the", "film") not in subjects and ("the", "picture") not in subjects
    assert {label for _, label in rows} == {0, 1}


def test_rule_clauses_follow_the_training_rows_with_labels_and_the_teachers_mean_logits():
    from sentipipe.tasks.classifier.train import with_rule_clauses
    from sentipipe.tasks.classifier.vocab_file import VocabFile
    from sentipipe.text.encoding import encode
    from sentipipe.text.tokenizer import TokenizerSettings
    from sentipipe.text.vocab import PAD, UNK, Vocab

    words = ["the", "premise", "is", "was", "not", "never", "n't", ",", "but", "yet", "although", "."]
    vocab = Vocab([PAD, UNK, *words, *augment.POSITIVE, *augment.NEGATIVE])
    labels = ["positive", "negative"]  # not in the rule's 0/1 order: the rows must map by name
    file = VocabFile(vocab, labels, TokenizerSettings(), {})
    texts = ["the premise is thin .".split(), "the premise was a delight .".split(), "the premise".split()]
    split = encode(texts, np.array([1, 0, -1]), vocab)  # the third: a teacher's variant, no label
    soft = np.array([[-1.0, 1.0], [3.0, -3.0], [0.5, 0.5]], dtype=np.float32)

    merged, targets = with_rule_clauses(split, soft, file, 50, seed=3)
    assert len(merged) == 53 and targets.shape == (53, 2)
    assert [list(merged.sequence(i)) for i in range(3)] == [list(split.sequence(i)) for i in range(3)]
    polarity = {**{w: 1 for w in augment.POSITIVE}, **{w: 0 for w in augment.NEGATIVE}}
    for i in range(3, 53):
        tokens = [vocab.tokens[t] for t in merged.sequence(i)]
        if "," not in tokens:
            assert labels[merged.labels[i]] == ("negative", "positive")[_rule_label(tokens, polarity)], tokens
        # The teacher's mean logits over the labelled training rows of that class.
        assert targets[i].tolist() == ([3.0, -3.0] if merged.labels[i] == 0 else [-1.0, 1.0])

    plain, none = with_rule_clauses(split, None, file, 10, seed=3)
    assert none is None and len(plain) == 13
    # Three classes: "not bad" is not surely "positive" there, so no rule clause is added.
    three = VocabFile(vocab, ["negative", "neutral", "positive"], TokenizerSettings(), {})
    same, _ = with_rule_clauses(split, None, three, 10, seed=3)
    assert same is split


def test_the_validation_suite_shares_only_template_words_with_the_test_suite_and_none_with_augmentation():
    blank = behaviour.Lexicon(
        positive=("qqqqq",) * 6,
        negative=("qqqqq",) * 6,
        subjects=("qqqqq",),
        praise=("qqqqq",),
        complaints=("qqqqq",),
        names=("qqqqq",),
        filler=("qqqqq",),
        short=(("qqqqq", "positive"),),
        intensifiers=("qqqqq",),
        downtoners=("qqqqq",),
    )
    template = behaviour.words(blank)  # the templates' own words, filled with nothing
    validation = behaviour.words(behaviour.VALIDATION)
    assert validation & behaviour.words() <= template
    assert not validation & (set(augment.POSITIVE) | set(augment.NEGATIVE))
    suite, held = behaviour.cases(), behaviour.cases(behaviour.VALIDATION)
    assert [c.capability for c in suite] == [c.capability for c in held]  # the same templates, case for case
    assert {c.expected for c in held} == {"positive", "negative", None}
