import numpy as np

from sentipipe.text.subwords import SubwordIndex

VOCAB = ["<pad>", "<unk>", "the", "film", "terrible", "dreadful", "tedious", "moving", "movies", "awful", "unwatchable"]


def every_edit(a: str, letters: str) -> set[str]:
    """Every string one drop, insertion, change or neighbour swap from a, written out position by position."""
    out = {a[:i] + a[i + 1 :] for i in range(len(a))}
    out |= {a[:i] + c + a[i:] for i in range(len(a) + 1) for c in letters}
    out |= {a[:i] + c + a[i + 1 :] for i in range(len(a)) for c in letters}
    out |= {a[:i] + a[i + 1] + a[i] + a[i + 2 :] for i in range(len(a) - 1)}
    return out - {a}


def test_the_words_one_edit_away_are_exactly_those_a_scan_of_the_vocabulary_finds():
    rng = np.random.default_rng(0)
    vocab = ["<pad>", "<unk>"] + sorted({"".join(rng.choice(list("abcd"), int(n))) for n in rng.integers(4, 7, 3000)})
    index = SubwordIndex(vocab)
    for word in ["".join(rng.choice(list("abcd"), int(n))) for n in rng.integers(5, 7, 300)]:
        edits = every_edit(word, "abcd")
        scan = [i for i, token in enumerate(vocab[2:], start=2) if token in edits]
        assert index.one_edit_away(word) == scan, word


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
