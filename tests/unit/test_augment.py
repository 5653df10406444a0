"""Distillation's augmentation never teaches the behavioural suite's words."""

import re

import numpy as np

from sentipipe.tasks.classifier import augment, behaviour, clause_syntax
from sentipipe.tasks.classifier.behaviour_other_syntax import FUNCTION_WORDS


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
    rows = augment.rule_clauses(texts, vocab, 600, np.random.default_rng(0), exclude, syntax=0.0)  # adjectives
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


def test_rule_clauses_follow_the_training_rows_with_labels_and_the_teachers_mean_logits(tmp_path):
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

    merged, targets = with_rule_clauses(split, soft, file, 50, seed=3, scratch=tmp_path)
    assert len(merged) == 53 and targets.shape == (53, 2)
    assert [list(merged.sequence(i)) for i in range(3)] == [list(split.sequence(i)) for i in range(3)]
    polarity = {**{w: 1 for w in augment.POSITIVE}, **{w: 0 for w in augment.NEGATIVE}}
    for i in range(3, 53):
        tokens = [vocab.tokens[t] for t in merged.sequence(i)]
        if "," not in tokens:
            assert labels[merged.labels[i]] == ("negative", "positive")[_rule_label(tokens, polarity)], tokens
        # The teacher's mean logits over the labelled training rows of that class.
        assert targets[i].tolist() == ([3.0, -3.0] if merged.labels[i] == 0 else [-1.0, 1.0])

    plain, none = with_rule_clauses(split, None, file, 10, seed=3, scratch=tmp_path)
    assert none is None and len(plain) == 13
    # Three classes: "not bad" is not surely "positive" there, so no rule clause is added.
    three = VocabFile(vocab, ["negative", "neutral", "positive"], TokenizerSettings(), {})
    same, _ = with_rule_clauses(split, None, three, 10, seed=3, scratch=tmp_path)
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


VOCAB = clause_syntax.words() | set(augment.POSITIVE) | set(augment.NEGATIVE) | {"setup", "the"}
POLARITY = {
    **{w: 1 for pair in clause_syntax.PLEASING + clause_syntax.LIKING for w in pair},
    **{w: 0 for pair in clause_syntax.DISPLEASING for w in pair},
    **{w: 1 for w in clause_syntax.VIRTUES + tuple(augment.POSITIVE)},
    **{w: 0 for w in clause_syntax.FLAWS + tuple(augment.NEGATIVE)},
}


ADVICE = "(" + "|".join(clause_syntax.GOOD_ADVICE + clause_syntax.BAD_ADVICE) + ") "
ADVICE_POLARITY = {**dict.fromkeys(clause_syntax.GOOD_ADVICE, 1), **dict.fromkeys(clause_syntax.BAD_ADVICE, 0)}


def _varied(n: int, seed: int = 0) -> list[tuple[str, int]]:
    rows = clause_syntax.clauses(
        [("the", "setup"), ("it",)], (augment.NEGATIVE, augment.POSITIVE), VOCAB, n, np.random.default_rng(seed)
    )
    assert len(rows) == n
    return [(" ".join(words), label) for words, label in rows]


def test_varied_clauses_use_the_syntax_they_claim_with_labels_by_rule():
    rows = _varied(4000)
    # "n't" is spelled out ("did not") in half of them: read both as "not"
    rows = [
        (text.replace("ca n't", "can not").replace("wo n't", "will not").replace("n't", "not"), y) for text, y in rows
    ]
    texts = [t for t, _ in rows]
    claims = {  # a syntax: the share of clauses written in it at least
        r"^(i|we|my \w+|the critics) (liked|enjoyed|respected|dug) ": 0.01,  # first person, a verb
        r" me \.$": 0.04,  # it did something to me
        r"^i was (not |never )?\w+ (by|\.)": 0.015,  # passive
        r"\?": 0.02,  # questions
        r" not without ": 0.005,
        r" never fails to ": 0.005,
        r" is anything but ": 0.005,
        r"^at no point did ": 0.005,  # a negative inversion
        r"^(you|everyone|nobody) should ": 0.01,  # advice
        "^(" + "|".join(clause_syntax.THINGS) + ") ": 0.1,  # other domains
        r"(a masterpiece|a stinker|a cure for insomnia|nails it|lays an egg)": 0.01,  # idioms
    }
    for pattern, share in claims.items():
        assert np.mean([bool(re.search(pattern, t)) for t in texts]) >= share, pattern
    assert 0.05 < np.mean([" not " in t for t in texts]) and any("did not" in t for t in texts)
    checked = 0
    for text, label in rows:  # the rule, read back from the text: a negation flips the slot's polarity
        if m := re.search(r"(did not|failed to|never|never once|at no point did \S+( \S+)?) (\w+) me \.$", text):
            assert label == 1 - POLARITY[m.group(3)], text
        elif m := re.search(r"(never fails to|did not fail to|managed to) (\w+) me \.$", text):
            assert label == POLARITY[m.group(2)], text
        elif m := re.search(r"^i was not (\w+) by ", text):
            assert label == 1 - POLARITY[m.group(1)], text
        elif m := re.search(r"^(never have i been so|i have never been more) (\w+) \.$", text):
            assert label == POLARITY[m.group(2)], text  # "never ... so": no negation
        elif m := re.search(r" (is not without|has plenty of|is not short on) (\w+) \.$", text):
            assert label == POLARITY[m.group(2)], text
        elif m := re.search(r" (has no|is short on) (\w+) \.$", text):
            assert label == 1 - POLARITY[m.group(2)], text
        elif m := re.search(r" (is anything but|is not exactly) (\w+) \.$", text):
            assert label == 1 - POLARITY[m.group(2)], text
        elif m := re.search(r" was not (\w+) \.$", text):
            assert label == int(m.group(1) in clause_syntax.BAD_THINGS), text
        elif m := re.search(r"^(you should not|nobody should|do not|you should|everyone should) " + ADVICE, text):
            negated = m.group(1) in ("you should not", "nobody should", "do not")
            assert label == ADVICE_POLARITY[m.group(2)] ^ negated, text  # "nobody should ignore it": positive
        elif text in ("i would not recommend it .", "we will never return .", "i could not stand the setup ."):
            assert label == 0, text
        elif re.search(r"^(i|we|my \w+|the critics) did not (like|enjoy|respect|dig) ", text):
            assert label == 0, text
        else:
            continue
        checked += 1
    assert checked > 800
    assert {label for _, label in rows} == {0, 1} and 0.35 < np.mean([y for _, y in rows]) < 0.65


def test_varied_clauses_teach_no_word_of_any_behavioural_set_but_syntax():
    leaked = (clause_syntax.words() & behaviour.held_out()) - FUNCTION_WORDS
    assert not leaked, f"clause_syntax.py writes words the behavioural sets test: {sorted(leaked)}"
    written = {w for text, _ in _varied(2000, seed=1) for w in text.split()}
    assert not (written & behaviour.held_out()) - FUNCTION_WORDS


def test_rule_clauses_mix_the_varied_syntax_in_its_share_and_skip_frames_outside_the_vocabulary():
    texts = ["the setup is thin .".split(), "this flick was a mess .".split()]
    rows = augment.rule_clauses(texts, VOCAB | {"setup", "flick"}, 900, np.random.default_rng(0), behaviour.held_out())
    adjective = [
        w for w, _ in rows if re.search(r"\b(is|was)( not| never| n't)? \w+ \.$", " ".join(w)) or w[0] == "not"
    ]
    assert len(rows) == 900 and 0.3 < len(adjective) / 900 < 0.7  # half in the varied syntax by default
    joined = [w for w, _ in rows if "," in w]
    assert 0.25 < len(joined) / 900 < 0.42  # a third joined by but / yet / although, whatever the syntax
    # A vocabulary without the frames' words: no varied clause, every row an adjective clause.
    small = set(augment.POSITIVE) | set(augment.NEGATIVE) | {"the", "setup", "is", "was", "not", "never", "n't", "."}
    rows = augment.rule_clauses(texts, small, 50, np.random.default_rng(0), behaviour.held_out())
    assert rows == augment.rule_clauses(texts, small, 50, np.random.default_rng(0), behaviour.held_out(), syntax=0.0)


def test_subjects_found_on_stored_ids_are_those_found_on_token_lists():
    """The training stage scans ids (any corpus size); the pairs must be the token lists' own, boundaries kept."""
    import numpy as np

    from sentipipe.tasks.classifier.augment import subjects, subjects_of_ids

    tokens = ["<pad>", "<unk>", "the", "plot", "is", "this", "cast", "was", "film", "good", "a", "2nd", "that"]
    rng = np.random.default_rng(0)
    seqs = [rng.integers(2, len(tokens), rng.integers(1, 9)) for _ in range(400)]
    seqs += [np.array([2, 3]), np.array([4, 9]), np.array([12, 8, 7]), np.array([2, 11, 4])]  # across a boundary
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])])
    ids = np.concatenate(seqs).astype(np.int32)
    rows = rng.random(len(seqs)) < 0.7
    texts = [[tokens[i] for i in s] for s, keep in zip(seqs, rows, strict=True) if keep]
    for exclude in (set(), {"cast"}):
        assert subjects_of_ids(ids, offsets, rows, tokens, exclude) == subjects(texts, exclude)
    last = subjects_of_ids(ids[-10:], offsets[-5:] - offsets[-5], np.ones(4, bool), tokens, set())
    assert last == [("it",), ("that", "film")], "'the plot' | 'is' spans two texts; '2nd' is no word"
