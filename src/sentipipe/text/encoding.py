"""Token ids stored compactly: one flat int32 array plus offsets per split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentipipe.io import atomic_write
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
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.concatenate(seqs).astype(np.int32) if seqs else np.zeros(0, dtype=np.int32)
    return EncodedSplit(ids, offsets, np.asarray(labels, dtype=np.int64))


def save_split(path: str | Path, split: EncodedSplit) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, ids=split.ids, offsets=split.offsets, labels=split.labels)

    atomic_write(path, write)


def load_split(path: str | Path) -> EncodedSplit:
    with np.load(path) as data:
        return EncodedSplit(data["ids"], data["offsets"], data["labels"])
