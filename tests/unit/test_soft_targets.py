"""The teacher's word pieces and soft targets held in bounded memory: compact arrays, read and written in chunks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from sentipipe.io import write_parquet_chunks
from sentipipe.tasks.classifier import paths
from sentipipe.tasks.classifier.soft_targets import SCHEMA, Pieces
from sentipipe.tasks.classifier.train import soft_target_split
from sentipipe.text.encoding import RELEASE_BYTES, SplitWriter, encode, load_split, release
from sentipipe.text.vocab import Vocab
from tests.helpers import mapped_kb


def test_pieces_hold_every_text_in_two_arrays_across_batches():
    batches = [[[101, 7, 102], [101, 102]], [], [[101, 5, 6, 9, 102]]]
    pieces = Pieces.of(batches)
    flat = [p for batch in batches for p in batch]
    assert len(pieces) == 3 and pieces.flat.dtype == np.int32 and pieces.lengths.tolist() == [3, 2, 5]
    assert [pieces[i].tolist() for i in range(len(pieces))] == flat
    assert len(Pieces.of([])) == 0 and Pieces.of([]).offsets.tolist() == [0]


def test_the_student_reads_the_soft_targets_a_batch_at_a_time_into_memory_mapped_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    vocab = Vocab(["<pad>", "<unk>", "good", "bad", "film"])
    rng = np.random.default_rng(0)
    words = [["good", "film"], [], [], ["bad"], ["a", "bad", "film"], ["film"]]  # two empty rows in a row
    frame = pd.DataFrame(
        {
            "tokens": [words[i % 6] for i in range(120_003)],
            "label": rng.integers(-1, 2, 120_003),
            "logits": [rng.normal(size=2).tolist() for _ in range(120_003)],
            "kind": "variant",
        }
    )
    paths.SOFT_TARGETS.parent.mkdir(parents=True)
    chunks = (frame[i : i + 40_000] for i in range(0, len(frame), 40_000))
    write_parquet_chunks(paths.SOFT_TARGETS, chunks, SCHEMA)
    (tmp_path / "split").mkdir()

    split, soft = soft_target_split(SimpleNamespace(vocab=vocab), tmp_path / "split")

    whole = encode(frame["tokens"].tolist(), frame["label"].to_numpy(), vocab)  # the old read: all at once
    assert isinstance(split.ids, np.memmap) and str(split.ids.filename).startswith(str(tmp_path / "split"))
    for name in ("ids", "offsets", "labels"):
        assert np.array_equal(getattr(split, name), getattr(whole, name)), name
    # an empty row reads as one unknown token
    assert split.lengths[1:3].tolist() == [1, 1] and split.sequence(2).tolist() == [1]
    assert soft.dtype == np.float64 and np.array_equal(soft, np.stack(frame["logits"].map(np.asarray)))


def _rss_file_mb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("RssFile:")[1].split()[0]) // 1024


def test_a_split_written_through_its_map_does_not_stay_in_the_process(tmp_path):
    """Pages written through a mapped file stay resident until unmapped: 3.8 GB of soft-target ids had kept the
    train stage at 3.4 GB. The writer gives them back as it goes; the file holds every id."""
    batches, per_batch = 25, 4 << 20  # 400 MB of int32 ids, 16 MB a batch
    before, grown = _rss_file_mb(), 0
    with SplitWriter(tmp_path, batches * 4, batches * per_batch) as writer:
        for b in range(batches):
            ids = np.full(per_batch, b, dtype=np.int32)
            writer.add_many(ids, np.full(4, per_batch // 4), np.arange(4) + 4 * b)
            grown = max(grown, _rss_file_mb() - before)
    split = load_split(tmp_path)
    assert grown < 2 * (RELEASE_BYTES >> 20) + 32, f"{grown} MB of the written file stayed in the process"
    assert split.sequence(0)[0] == 0 and split.sequence(99)[-1] == 24 and split.labels.tolist() == list(range(100))
    assert split.offsets[-1] == batches * per_batch


def test_the_teachers_fine_tuning_gives_back_the_pieces_pages_it_read_every_step(tmp_path, monkeypatch):
    """The training texts' word pieces are spilled to a mapped file; random batches map cached pages around every
    row read (whole large folios), so each step gives them back before the encoder runs (every tenth step had
    let them pile up, as the student's ids did: docs/evidence.md#student-2026-12-06)."""
    import torch

    from sentipipe.tasks.classifier import teacher_model as teacher
    from tests.unit.test_teacher_encoders import tiny_checkpoint

    rng = np.random.default_rng(0)
    rows = [rng.integers(1000, 2000, size=80).tolist() for _ in range(6_000)]  # 1.9 MB of int32 pieces
    spill = tmp_path / "pieces.bin"
    pieces = {
        "train": Pieces.of((rows[i : i + 3_000] for i in range(0, len(rows), 3_000)), spill),
        "val": Pieces.of([rows[:8]]),
        "test": Pieces.of([rows[8:16]]),
    }
    y = {s: rng.integers(0, 2, size=len(p)) for s, p in pieces.items()}
    [pieces["train"][i].copy() for i in rng.choice(6_000, 100, replace=False)]  # a batch read, nothing given back
    assert mapped_kb(spill) > 1_000, "a batch read should map pages of the spilled pieces (the control)"
    release(pieces["train"].flat)
    held: list[int] = []

    class Watched(teacher.TeacherNetwork):
        def forward(self, ids, mask):
            if self.training:
                held.append(mapped_kb(spill))
            return super().forward(ids, mask)

    monkeypatch.setattr(teacher, "TeacherNetwork", Watched)
    d = SimpleNamespace(teacher_epochs=1, teacher_lr=1e-4, teacher_batch_size=100, seed=0)
    model, history = teacher.fine_tune(pieces, y, d, 0, torch.device("cpu"), tiny_checkpoint(tmp_path / "enc", 130))

    assert len(held) == 60 and len(history) == 1
    # a step of 100 random rows maps far more than its 31 kB of pieces (the whole file, on the old cadence);
    # read, padded and given back, it holds none while the encoder runs
    top, mean = max(held), sum(held) // len(held)
    assert top < 500, f"{top} kB of the pieces stayed mapped while the encoder ran ({mean} kB on average)"
    assert pieces["train"][5_999].tolist() == rows[-1] and spill.stat().st_size == 6_000 * 80 * 4


def test_a_long_text_gives_the_teacher_the_parts_of_it_the_student_reads():
    from transformers import AutoTokenizer

    from sentipipe.tasks.classifier.minilm import minilm_dir
    from sentipipe.tasks.classifier.soft_targets import encoded

    pieces_of = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
    review = "an opening line . " + "and then the plot goes on . " * 60 + "in the end a masterpiece"
    short = "a short and sweet film"
    head, both = (encoded(pieces_of, 34, [review, short], p) for p in ("head", "head+tail"))
    words = lambda ids: pieces_of.decode(ids[1:-1])  # noqa: E731
    assert [len(ids) for ids in head[:1] + both[:1]] == [34, 34]
    assert all(ids[0] == pieces_of.cls_token_id and ids[-1] == pieces_of.sep_token_id for ids in head + both)
    assert words(head[0]).startswith("an opening line") and "masterpiece" not in words(head[0])
    assert words(both[0]).startswith("an opening") and words(both[0]).endswith("in the end a masterpiece")
    whole = pieces_of(review, add_special_tokens=False)["input_ids"]
    assert both[0][1:-1] == whole[:8] + whole[-24:]  # a quarter of the 32 from the start, the rest from the end
    assert head[1] == both[1] == pieces_of(short)["input_ids"]  # a text within the length is read whole either way
