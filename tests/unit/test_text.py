import numpy as np

from sentipipe.text.encoding import encode, load_split, save_split
from sentipipe.text.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocab, build_vocab


def test_vocab_orders_by_frequency_and_honours_min_freq_and_max_size():
    docs = [["b", "a", "a"], ["c", "a", "b"], ["d"]]
    vocab, counts = build_vocab(docs, min_freq=2, max_size=10)
    assert vocab.tokens == [PAD, UNK, "a", "b"]
    assert counts["d"] == 1
    small, _ = build_vocab(docs, min_freq=1, max_size=3)
    assert small.tokens == [PAD, UNK, "a"]


def test_unknown_tokens_map_to_the_unknown_id():
    vocab = Vocab([PAD, UNK, "good"])
    assert vocab.encode(["good", "never-seen"]).tolist() == [2, UNK_ID]
    assert PAD_ID == 0


def test_encoding_round_trips_through_memory_mapped_arrays(tmp_path):
    vocab = Vocab([PAD, UNK, "a", "b"])
    split = encode([["a", "b", "a"], [], ["b"]], np.array([1, 0, 1]), vocab)
    assert split.ids.dtype == np.int32 and split.offsets.tolist() == [0, 3, 4, 5]
    assert split.sequence(1).tolist() == [UNK_ID], "an empty text still has one token"
    save_split(tmp_path / "s", split)
    back = load_split(tmp_path / "s")
    assert isinstance(back.ids, np.memmap), "read from disk as needed, not loaded whole"
    assert back.ids.tolist() == split.ids.tolist() and back.labels.tolist() == [1, 0, 1]
    assert back.sequence(0).tolist() == split.sequence(0).tolist()
    assert not list((tmp_path / "s").glob(".*tmp")), "no temporary file is left behind"


def test_a_split_writer_that_is_not_filled_leaves_nothing(tmp_path):
    import pytest

    from sentipipe.text.encoding import SplitWriter

    with pytest.raises(ValueError, match="1 sequences written, 2 expected"):
        with SplitWriter(tmp_path / "s", sequences=2, tokens=3) as writer:
            writer.add(np.array([2, 3], dtype=np.int32), 0)
    assert not list((tmp_path / "s").iterdir())


def test_splits_concatenate_on_disk_and_subset_in_memory_to_the_same_rows(tmp_path):
    from sentipipe.text.encoding import concatenate, encode_ids, subset

    first = encode_ids([np.array([2, 3, 4], dtype=np.int32), np.array([5], dtype=np.int32)], np.array([0, 1]))
    second = encode_ids([np.array([6, 7], dtype=np.int32)], np.array([1]))
    merged = concatenate(first, second, tmp_path)
    assert len(merged) == 3 and [merged.sequence(i).tolist() for i in range(3)] == [[2, 3, 4], [5], [6, 7]]
    assert merged.labels.tolist() == [0, 1, 1] and isinstance(merged.ids, np.memmap)
    picked = subset(merged, np.array([0, 2]))
    assert [picked.sequence(i).tolist() for i in range(2)] == [[2, 3, 4], [6, 7]] and picked.labels.tolist() == [0, 1]
