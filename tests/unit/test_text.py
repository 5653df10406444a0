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


def test_encoding_round_trips_through_a_compact_file(tmp_path):
    vocab = Vocab([PAD, UNK, "a", "b"])
    split = encode([["a", "b", "a"], [], ["b"]], np.array([1, 0, 1]), vocab)
    assert split.ids.dtype == np.int32 and split.offsets.tolist() == [0, 3, 4, 5]
    assert split.sequence(1).tolist() == [UNK_ID], "an empty text still has one token"
    save_split(tmp_path / "s.npz", split)
    back = load_split(tmp_path / "s.npz")
    assert back.ids.tolist() == split.ids.tolist() and back.labels.tolist() == [1, 0, 1]
    assert not list(tmp_path.glob(".*tmp")), "no temporary file is left behind"
