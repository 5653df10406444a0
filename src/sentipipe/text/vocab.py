"""A vocabulary built from the training split only, with pad and unknown ids."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


@dataclass(frozen=True)
class Vocab:
    tokens: list[str]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokens[:2] != [PAD, UNK]:
            raise ValueError("a vocabulary starts with the pad and unknown tokens")
        object.__setattr__(self, "index", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str]) -> np.ndarray:
        get = self.index.get
        return np.fromiter((get(t, UNK_ID) for t in tokens), dtype=np.int32, count=len(tokens))


def build_vocab(
    token_lists: Iterable[list[str]], min_freq: int, max_size: int, counts: Counter | None = None
) -> tuple[Vocab, Counter]:
    """Most frequent tokens first (ties broken alphabetically, so the order is reproducible).

    `counts`: tokens counted already (a streamed corpus); the lists add to them.
    """
    counts = counts if counts is not None else Counter()
    for tokens in token_lists:
        counts.update(tokens)
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return Vocab([PAD, UNK, *kept[: max_size - 2]]), counts
