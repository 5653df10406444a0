"""The teacher's data path in bounded memory: word pieces as flat arrays, soft targets made a chunk at a time.

`Pieces` holds many texts' word pieces as one int32 array and offsets (on disk when
given a file); `chunks` reads a split's texts and labels a batch at a time; `varied`
makes one chunk's soft-target rows (the training texts, their variants, their
negation and contrast edits) as the labeller asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from itertools import islice
from pathlib import Path

import numpy as np

from sentipipe.data.paths import prepared
from sentipipe.io import parquet_batches
from sentipipe.tasks.classifier import augment
from sentipipe.tasks.classifier.params import DistillParams
from sentipipe.tasks.classifier.teacher_off import COLUMNS, SCHEMA  # noqa: F401 - the file's columns, defined there
from sentipipe.text.tokenizer import tokenize_with_offsets, truncate


class Pieces:
    """The word pieces of many texts as one flat int32 array and offsets: a million texts of 128 pieces take
    0.5 GB, on disk when `of` is given a file, against several GB as lists of Python ints."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray):
        self.flat, self.offsets = flat, offsets
        self.lengths = np.diff(offsets)

    @classmethod
    def of(cls, batches: Iterable[list[list[int]]], spill: Path | None = None) -> Pieces:
        """Batches of texts' pieces, converted as they come; with `spill`, appended to that file and mapped."""
        flats, lengths = [], []
        with spill.open("wb") if spill is not None else nullcontext() as sink:
            for batch in batches:
                lengths.append(np.fromiter((len(p) for p in batch), np.int64, len(batch)))
                flat = np.fromiter((i for p in batch for i in p), np.int32, int(lengths[-1].sum()))
                if sink is None:
                    flats.append(flat)
                else:
                    sink.write(flat.tobytes())
        offsets = np.zeros(sum(len(n) for n in lengths) + 1, np.int64)
        if lengths:
            np.cumsum(np.concatenate(lengths), out=offsets[1:])
        if spill is not None and offsets[-1]:
            return cls(np.memmap(spill, np.int32, "r"), offsets)
        return cls(np.concatenate(flats) if flats else np.zeros(0, np.int32), offsets)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i] : self.offsets[i + 1]]


def _tokens_and_spaces(texts: list[str], settings) -> list[tuple[list[str], list[bool]]]:
    out = []
    for spans in tokenize_with_offsets(texts, settings):
        words = [t for t, _, _ in spans]
        out.append((words, [spans[i][2] < spans[i + 1][1] for i in range(len(spans) - 1)] + [False] if spans else []))
    return out


TOKENIZER_TEXTS = 1_000  # texts a call of the fast tokenizer: with 10,000 long reviews a call, its buffers kept 0.6 GB


def encoded(pieces_of, length: int, texts: list[str], policy: str = "head") -> list[list[int]]:
    """The texts' word pieces, at most `length` each with the encoder's special tokens, the tokenizer called on
    TOKENIZER_TEXTS texts at a time. A longer text keeps its head, its tail or a quarter from the start and the
    rest from the end, as `policy` (classifier.tokenize.truncation) says: the parts of it the student reads."""

    def ids(**kwargs) -> Iterator[list[int]]:
        for i in range(0, len(texts), TOKENIZER_TEXTS):
            yield from pieces_of(texts[i : i + TOKENIZER_TEXTS], **kwargs)["input_ids"]

    if policy == "head":  # the tokenizer cuts it, special tokens kept
        return list(ids(truncation=True, max_length=length))
    # the encoder's special tokens around a text ([CLS] ... [SEP], <s> ... </s>), found around a one-word text
    probe, word = pieces_of("a")["input_ids"], pieces_of("a", add_special_tokens=False)["input_ids"]
    start = next(i for i in range(len(probe)) if probe[i : i + len(word)] == word)
    before, after = probe[:start], probe[start + len(word) :]
    keep = length - len(before) - len(after)
    return [
        p if len(p) <= length else [*before, *truncate(p[len(before) : len(p) - len(after)], keep, policy), *after]
        for p in ids(verbose=False)
    ]


def chunks(split: str, rows: int) -> Iterator[tuple[list[str], list[str]]]:
    """A split's texts and labels, `rows` at a time, read from its Parquet file a row group at a time."""
    for batch in parquet_batches(prepared(split), ["text", "label"], rows):
        yield [str(t) for t in batch.column("text").to_pylist()], batch.column("label").to_pylist()


def varied(
    originals: list[str],
    y: np.ndarray,
    settings,
    d: DistillParams,
    rng: np.random.Generator,
    swapper: augment.Swapper,
    mask: str,
    binary: bool,
) -> Iterator[tuple[tuple[list[str], int, str], str]]:
    """One chunk's rows for the soft targets ((tokens, label, kind), and the text the teacher reads), made as they are
    asked for: the training texts as written, then their variants (masks in the encoder's own token), then (binary
    labels) their negation and contrast edits, which pair texts of this chunk. Only the chunk's tokens are held."""
    train_tokens = _tokens_and_spaces(originals, settings)
    for (t, _), label, text in zip(train_tokens, y, originals, strict=True):
        yield (t, int(label), "train"), text
    masked: Callable = lambda variant: [mask if t == augment.MASK_STUDENT else t for t in variant]  # noqa: E731
    for tokens, spaces in train_tokens:
        for variant, gaps in augment.tang(tokens, spaces, d.variants, rng, swapper):
            yield (variant, -1, "variant"), augment.render(masked(variant), gaps)
    if d.contrast and binary:
        for variant, gaps, kind in augment.contrast(train_tokens, y, rng):
            yield (variant, -1, kind), augment.render(masked(variant), gaps)


def parts(items: Iterable, size: int) -> Iterator[list]:
    items = iter(items)
    while part := list(islice(items, size)):
        yield part
