import numpy as np

from sentipipe.text.encoding import encode, load_split, save_split
from sentipipe.text.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocab, build_vocab
from tests.helpers import mapped_kb


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


def test_training_steps_give_back_the_pages_of_the_mapped_ids_they_read(tmp_path):
    """Random batches over a mapped split map cached pages around every row read (fault-around): without a
    release a million reviews' 0.8 GB of ids ends up in the training process's resident memory."""
    import torch

    from sentipipe.tasks.classifier import objective
    from sentipipe.text.batching import collate
    from sentipipe.text.encoding import encode_ids

    rng = np.random.default_rng(0)
    rows = [rng.integers(2, 50, size=500, dtype=np.int32) for _ in range(20_000)]  # 40 MB of ids
    save_split(tmp_path / "s", encode_ids(rows, rng.integers(0, 2, size=len(rows))))
    split, ids_file = load_split(tmp_path / "s"), tmp_path / "s" / "ids.npy"
    model = torch.nn.Sequential(torch.nn.EmbeddingBag(50, 2))
    task = objective.Classification(split, split, batch_size=200, num_classes=2)
    task_model = lambda ids, lengths: model(ids)  # noqa: E731
    batches = task.batches(np.random.default_rng(1))
    for batch in batches[:40]:  # read as a step reads them, with nothing given back
        collate(split, batch)
    held = mapped_kb(ids_file)
    assert held > 10_000, f"the batches read should have mapped pages of the ids ({held} kB)"
    for batch in batches[40:45]:  # every step gives back what it mapped (every tenth had left 382 MB mapped)
        task.step(task_model, batch, torch.device("cpu"))
        assert mapped_kb(ids_file) < held / 10, "a step leaves the pages it read mapped"
    assert [task.train.sequence(i).tolist() for i in (0, 19_999)] == [rows[0].tolist(), rows[-1].tolist()]


def test_parquet_batches_are_iter_batches_read_a_row_group_at_a_time(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sentipipe.io import parquet_batches

    table = pa.table({"text": [f"review {i}" for i in range(23)], "label": [str(i % 2) for i in range(23)]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=5)
    handle = pq.ParquetFile(tmp_path / "t.parquet")
    for size in (1, 4, 5, 7, 23, 50):
        for columns in (None, ["text"]):
            expected = [b.to_pydict() for b in handle.iter_batches(batch_size=size, columns=columns)]
            assert [b.to_pydict() for b in parquet_batches(handle, columns, size)] == expected, (size, columns)
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    assert list(parquet_batches(tmp_path / "empty.parquet")) == []
