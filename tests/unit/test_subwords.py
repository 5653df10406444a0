import itertools

import numpy as np

from sentipipe.text.subwords import SubwordIndex, one_edit

VOCAB = ["<pad>", "<unk>", "the", "film", "terrible", "dreadful", "tedious", "moving", "movies", "awful", "unwatchable"]


def brute_force_one_edit(a: str, b: str) -> bool:
    """Every string one drop, insertion, change or neighbour swap from a, compared with b."""
    letters = sorted(set(a + b))
    out = {a[:i] + a[i + 1 :] for i in range(len(a))}
    out |= {a[:i] + c + a[i:] for i in range(len(a) + 1) for c in letters}
    out |= {a[:i] + c + a[i + 1 :] for i in range(len(a)) for c in letters}
    out |= {a[:i] + a[i + 1] + a[i] + a[i + 2 :] for i in range(len(a) - 1)}
    return b in out - {a}


def test_one_edit_agrees_with_listing_every_edit():
    words = [
        "".join(p)
        for n, letters in [(1, "abc"), (2, "abc"), (3, "abc"), (4, "ab")]
        for p in itertools.product(letters, repeat=n)
    ]
    for a, b in itertools.product(words, words):
        assert one_edit(a, b) == brute_force_one_edit(a, b), (a, b)


def test_a_slip_of_the_fingers_finds_the_word_it_spoils():
    index = SubwordIndex(VOCAB)
    for typo, word in [
        ("dredaful", "dreadful"),
        ("teidous", "tedious"),
        ("terible", "terrible"),
        ("terriblle", "terrible"),
        ("afwul", "awful"),
        ("tedioux", "tedious"),
    ]:
        assert index.neighbours(typo) == [(VOCAB.index(word), 1.0)], typo


def test_of_several_words_one_edit_away_the_most_frequent_is_chosen():
    index = SubwordIndex(VOCAB)  # "movins" is one edit from "moving" (more frequent: earlier) and "movies"
    assert index.neighbours("movins") == [(VOCAB.index("moving"), 1.0)]


def test_other_unseen_words_fall_back_to_shared_trigrams_or_nothing():
    index = SubwordIndex(VOCAB)
    found = index.neighbours("unwatchability")  # three edits from "unwatchable": trigrams
    assert found and found[0][0] == VOCAB.index("unwatchable") and 0.6 <= found[0][1] < 1.0
    assert index.neighbours("Kenji") == [] and index.neighbours("zyxwv") == []
    assert index.neighbours("flim") == []  # too short to trust one edit ("film"), too few shared trigrams
    matrix = np.arange(len(VOCAB) * 2, dtype=np.float32).reshape(-1, 2)
    np.testing.assert_array_equal(index.vector("dredaful", matrix), matrix[VOCAB.index("dreadful")])
    assert index.vector("zyxwv", matrix) is None
