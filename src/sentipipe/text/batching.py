"""Length-bucketed batches: sequences of like length share a batch, so little is padding."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from sentipipe.text.encoding import EncodedSplit
from sentipipe.text.vocab import PAD_ID


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, shuffle: bool, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Index batches. Shuffled: sort within random pools of 50 batches, then shuffle the batches."""
    n = len(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    assert rng is not None
    perm = rng.permutation(n)
    pool = batch_size * 50
    batches = []
    for start in range(0, n, pool):
        chunk = perm[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(split: EncodedSplit, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded ids (batch, max_len), CPU lengths and labels for one batch."""
    lengths = split.lengths[index]
    ids = np.full((len(index), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, i in enumerate(index):
        seq = split.sequence(int(i))
        ids[row, : len(seq)] = seq
    return torch.from_numpy(ids), torch.from_numpy(lengths.astype(np.int64)), torch.from_numpy(split.labels[index])


def iterate(
    split: EncodedSplit, batch_size: int, shuffle: bool, rng: np.random.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    for index in bucketed_batches(split.lengths, batch_size, shuffle, rng):
        yield collate(split, index)


def padding_fraction(split: EncodedSplit, batch_size: int, shuffle: bool, seed: int = 0) -> float:
    lengths = split.lengths
    batches = bucketed_batches(lengths, batch_size, shuffle, np.random.default_rng(seed))
    cells = sum(len(b) * int(lengths[b].max()) for b in batches)
    return 1.0 - float(lengths.sum()) / max(cells, 1)
