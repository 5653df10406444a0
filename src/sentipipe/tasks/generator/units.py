"""The generator's text side: documents -> units (characters or spaCy tokens) -> one id stream per split.

Each document ends with `<eos>`. The vocabulary comes from the training split;
a unit it lacks (in a later split, or in a prompt) is `<unk>`, which the model
reads but never writes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sentipipe.errors import DataError
from sentipipe.io import read_json, write_json
from sentipipe.text.tokenizer import TokenizerSettings, tokenize
from sentipipe.text.vocab import PAD, UNK, Vocab

EOS = "<eos>"
EOS_ID = 2
NO_SPACE_BEFORE = re.compile(r"^(?:[.,!?;:%)\]}]+|'\w*|n't)$", re.IGNORECASE)


def split_documents(docs: list[str], val_size: float, test_size: float, seed: int) -> dict[str, list[str]]:
    """A seeded shuffle of whole documents into train / val / test."""
    if len(docs) < 3:
        raise DataError(f"{len(docs)} documents cannot make train, validation and test splits (need at least 3)")
    order = np.random.default_rng(seed).permutation(len(docs))
    n_val, n_test = max(1, round(len(docs) * val_size)), max(1, round(len(docs) * test_size))
    parts = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
    return {name: [docs[i] for i in sorted(index)] for name, index in parts.items()}


def cap_characters(docs: list[str], max_chars: int) -> list[str]:
    """The documents, in order, while their characters stay within `max_chars` (at least one document)."""
    kept, total = [], 0
    for doc in docs:
        total += len(doc) + 1
        if kept and total > max_chars:
            break
        kept.append(doc)
    return kept


@dataclass(frozen=True)
class UnitSettings:
    unit: str = "char"  # char | token
    lowercase: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def to_units(texts: Sequence[str], settings: UnitSettings) -> list[list[str]]:
    if settings.unit == "char":
        return [list(t.lower() if settings.lowercase else t) for t in texts]
    return list(tokenize(texts, TokenizerSettings(lowercase=settings.lowercase, max_length=2**31)))


def from_units(units: Sequence[str], settings: UnitSettings) -> str:
    if settings.unit == "char":
        return "".join(units)
    out = ""
    for u in units:  # spaCy tokens back to text: a space between tokens, none before punctuation or clitics
        out += u if (not out or NO_SPACE_BEFORE.match(u) or out.endswith(("(", "[", "$"))) else " " + u
    return out


def build_vocab(unit_lists: list[list[str]], min_freq: int, max_size: int) -> Vocab:
    counts: Counter = Counter()
    for units in unit_lists:
        counts.update(units)
    kept = sorted(
        (u for u, c in counts.items() if c >= min_freq and u not in (PAD, UNK, EOS)), key=lambda u: (-counts[u], u)
    )
    return Vocab([PAD, UNK, EOS, *kept[: max_size - 3]])


def encode_stream(unit_lists: list[list[str]], vocab: Vocab) -> np.ndarray:
    """One stream: every document's ids followed by <eos>."""
    parts = []
    for units in unit_lists:
        parts.append(vocab.encode(units))
        parts.append(np.array([EOS_ID], dtype=np.int32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def write_vocab(path: Path, vocab: Vocab, settings: UnitSettings, stats: dict) -> None:
    write_json(path, {"units": settings.to_dict(), "tokens": vocab.tokens, "splits": stats})


def read_vocab(path: Path) -> tuple[Vocab, UnitSettings, dict]:
    """The vocabulary, the unit settings and each split's statistics (characters per unit among them)."""
    data = read_json(path)
    return Vocab(data["tokens"]), UnitSettings(**data["units"]), data["splits"]
