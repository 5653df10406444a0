"""Token ids stored compactly: one flat int32 array plus offsets per split."""

from __future__ import annotations

import mmap
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentipipe.io import atomic_paths
from sentipipe.text.vocab import Vocab


@dataclass(frozen=True)
class EncodedSplit:
    ids: np.ndarray  # int32, all sequences back to back
    offsets: np.ndarray  # int64, len(n) + 1; sequence i is ids[offsets[i]:offsets[i+1]]
    labels: np.ndarray  # int64 class indices

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]


def encode(token_lists: list[list[str]], labels: np.ndarray, vocab: Vocab) -> EncodedSplit:
    """Empty token lists become a single unknown token so every sequence has length >= 1."""
    seqs = [vocab.encode(t) if t else np.array([1], dtype=np.int32) for t in token_lists]
    return encode_ids(seqs, labels)


ARRAYS = ("ids", "offsets", "labels")


def subset(split: EncodedSplit, rows: np.ndarray) -> EncodedSplit:
    """These rows of a split, in their order, in memory."""
    return encode_ids([split.sequence(int(i)) for i in rows], split.labels[rows])


def encode_ids(seqs: list[np.ndarray], labels: np.ndarray) -> EncodedSplit:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.concatenate(seqs).astype(np.int32) if seqs else np.zeros(0, dtype=np.int32)
    return EncodedSplit(ids, offsets, np.asarray(labels, dtype=np.int64))


def concatenate(first: EncodedSplit, second: EncodedSplit, folder: str | Path) -> EncodedSplit:
    """`first`'s rows then `second`'s, written to .npy files in `folder` a slice at a time and opened memory-mapped
    but untouched: a split larger than memory stays on disk, and copying it maps none of it into this process."""
    arrays = (
        [first.ids, second.ids],
        [first.offsets, second.offsets[1:] + first.offsets[-1]],
        [first.labels, second.labels],
    )
    out = []
    for name, parts, dtype in zip(ARRAYS, arrays, (np.int32, np.int64, np.int64), strict=True):
        path = Path(folder) / f"{name}.npy"
        with path.open("wb") as sink:
            header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": (sum(len(p) for p in parts),)}
            np.lib.format.write_array_header_1_0(sink, header)
            for part in parts:
                for start in range(0, len(part), 1 << 22):
                    piece = np.array(part[start : start + (1 << 22)], dtype=dtype)
                    sink.write(piece.tobytes())
                    if isinstance(part, np.memmap):  # the pages just read leave this process
                        release(part)
        out.append(np.load(path, mmap_mode="r"))
    return EncodedSplit(*out)


def release(array: np.ndarray) -> None:
    """Drop a memory map's pages from this process (read-only, or flushed first: they stay in the page cache);
    anything else is left alone. Reading rows of a mapped file maps whole runs of cached pages around each
    one (the kernel's fault-around): random batches over 0.8 GB of ids leave most of the file in the process."""
    mapped = getattr(array, "_mmap", None)
    if mapped is not None and hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_DONTNEED)


RELEASE_BYTES = 64 << 20  # ids written between giving their pages back


class SplitWriter:
    """Writes a split's arrays straight to their .npy files, sequence by sequence, in bounded memory.

    A context manager: the sizes are known up front (the tokenize stage counts before it writes),
    and the files appear only when every sequence is in.
    """

    def __init__(self, folder: str | Path, sequences: int, tokens: int):
        self.folder, self.sequences, self.tokens = Path(folder), sequences, tokens

    def __enter__(self) -> SplitWriter:
        self._stack = ExitStack()
        temps = self._stack.enter_context(atomic_paths(*(self.folder / f"{n}.npy" for n in ARRAYS)))
        self.ids = np.lib.format.open_memmap(temps[0], mode="w+", dtype=np.int32, shape=(self.tokens,))
        self.offsets = np.lib.format.open_memmap(temps[1], mode="w+", dtype=np.int64, shape=(self.sequences + 1,))
        self.labels = np.lib.format.open_memmap(temps[2], mode="w+", dtype=np.int64, shape=(self.sequences,))
        self.offsets[0] = 0
        self.row = self.position = self._pending = 0
        return self

    def add(self, ids: np.ndarray, label: int) -> None:
        end = self.position + len(ids)
        self.ids[self.position : end] = ids
        self.row += 1
        self.offsets[self.row], self.labels[self.row - 1], self.position = end, label, end
        self._written(len(ids))

    def add_many(self, ids: np.ndarray, lengths: np.ndarray, labels: np.ndarray) -> None:
        """Sequences back to back (`ids`, split by `lengths`) with their labels, at once."""
        end, rows = self.position + len(ids), self.row + len(lengths)
        self.ids[self.position : end] = ids
        self.offsets[self.row + 1 : rows + 1] = self.position + np.cumsum(lengths)
        self.labels[self.row : rows] = labels
        self.row, self.position = rows, end
        self._written(len(ids))

    def _written(self, tokens: int) -> None:
        """Every RELEASE_BYTES of ids, the pages written go to the file and leave this process: a mapped file's
        written pages otherwise stay in it (3.8 GB of ids kept the train stage at 3.4 GB)."""
        self._pending += 4 * tokens
        if self._pending >= RELEASE_BYTES:
            self.ids.flush()
            release(self.ids)
            self._pending = 0

    def __exit__(self, kind, error, trace) -> bool:
        for array in (self.ids, self.offsets, self.labels):
            array.flush()
        del self.ids, self.offsets, self.labels
        if kind is None and (self.row, self.position) != (self.sequences, self.tokens):
            error = ValueError(f"{self.folder}: {self.row} sequences written, {self.sequences} expected")
            self._stack.__exit__(ValueError, error, None)  # the partial files go
            raise error
        return bool(self._stack.__exit__(kind, error, trace))


def save_split(folder: str | Path, split: EncodedSplit) -> None:
    with SplitWriter(folder, len(split), len(split.ids)) as writer:
        for i in range(len(split)):
            writer.add(split.sequence(i), int(split.labels[i]))


def load_split(folder: str | Path, mmap: bool = True) -> EncodedSplit:
    """A split's arrays; memory-mapped by default, so a large corpus is read from disk as batches need it."""
    mode = "r" if mmap else None
    ids, offsets, labels = (np.load(Path(folder) / f"{n}.npy", mmap_mode=mode) for n in ARRAYS)
    return EncodedSplit(ids, offsets, labels)
