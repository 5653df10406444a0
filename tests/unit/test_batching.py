import numpy as np

from sentipipe.text.batching import bucketed_batches, collate, padding_fraction
from sentipipe.text.encoding import EncodedSplit


def split_with_lengths(lengths) -> EncodedSplit:
    lengths = np.asarray(lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return EncodedSplit(
        np.arange(2, 2 + lengths.sum(), dtype=np.int32), offsets, np.zeros(len(lengths), dtype=np.int64)
    )


def test_every_index_is_batched_exactly_once():
    lengths = np.random.default_rng(0).integers(1, 60, size=1003)
    for shuffle in (False, True):
        batches = bucketed_batches(lengths, 32, shuffle, np.random.default_rng(1))
        seen = np.concatenate(batches)
        assert sorted(seen.tolist()) == list(range(1003))
        assert max(len(b) for b in batches) == 32


def test_bucketing_cuts_padding_against_random_batches():
    lengths = np.random.default_rng(0).integers(1, 80, size=5000)
    split = split_with_lengths(lengths)
    rng = np.random.default_rng(2)
    random_batches = np.array_split(rng.permutation(5000), 5000 // 64)
    random_pad = 1 - lengths.sum() / sum(len(b) * lengths[b].max() for b in random_batches)
    assert padding_fraction(split, 64, shuffle=True) < random_pad / 4


def test_collate_pads_with_zeros_and_keeps_lengths():
    split = split_with_lengths([3, 1, 2])
    ids, lengths, _ = collate(split, np.array([0, 1]))
    assert ids.tolist() == [[2, 3, 4], [5, 0, 0]]
    assert lengths.tolist() == [3, 1]
