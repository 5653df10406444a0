"""Stage tokenize (generator): texts -> units -> one id stream per split; the vocabulary from train.

The texts are the classifier's prepared splits (`generator.data.source:
prepared`) or a file of the user's, capped at `generator.data.max_chars`
characters of training text, so the generator never grows silently with the
classifier's corpus.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from sentipipe.data.formats import read_documents
from sentipipe.data.paths import SPLITS, prepared
from sentipipe.errors import DataError
from sentipipe.io import parquet_batches, require, write_json, write_npy
from sentipipe.tasks.generator.params import DataParams, GeneratorConfig
from sentipipe.tasks.generator.paths import TOKENS_REPORT, VOCAB, stream
from sentipipe.tasks.generator.units import (
    UnitSettings,
    build_vocab,
    cap_characters,
    encode_stream,
    split_documents,
    to_units,
    write_vocab,
)
from sentipipe.text.vocab import UNK_ID


def capped_prepared(split: str, max_chars: int, batch_rows: int = 10_000) -> tuple[list[str], int]:
    """A prepared split's documents in order while within `max_chars` (as cap_characters), read in row batches
    and no further than the cap: the classifier's corpus may be far larger than memory. Also its row count."""
    source = pq.ParquetFile(prepared(split))
    kept: list[str] = []
    total = 0
    for batch in parquet_batches(source, ["text"], batch_rows):
        for text in batch.column(0).to_pylist():
            total += len(str(text)) + 1
            if kept and total > max_chars:
                return kept, source.metadata.num_rows
            kept.append(str(text))
    return kept, source.metadata.num_rows


def documents(d: DataParams, caps: dict[str, int]) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Each split's documents within its cap, and how many documents the split had before it."""
    if d.source == "prepared":
        require(*(prepared(s) for s in SPLITS))
        read = {s: capped_prepared(s, caps[s]) for s in SPLITS}
        return {s: docs for s, (docs, _) in read.items()}, {s: rows for s, (_, rows) in read.items()}
    found = split_documents(read_documents(Path(d.path or ""), d.text_column), d.val_size, d.test_size, d.seed)
    return {s: cap_characters(texts, caps[s]) for s, texts in found.items()}, {s: len(t) for s, t in found.items()}


def tokenize(params: GeneratorConfig) -> dict:
    g = params.generator
    t = g.tokenize
    settings = UnitSettings(unit=t.unit, lowercase=t.lowercase)
    caps = {"train": g.data.max_chars, "val": g.data.max_chars // 8, "test": g.data.max_chars // 8}
    docs, found = documents(g.data, caps)
    units = {s: to_units(texts, settings) for s, texts in docs.items()}
    vocab = build_vocab(units["train"], t.min_freq, t.max_size)
    stats = {}
    for split in SPLITS:
        ids = encode_stream(units[split], vocab)
        if len(ids) < 3:
            raise DataError(f"generator: the {split} split has too little text ({len(ids)} units)")
        write_npy(stream(split), ids)
        chars = sum(len(text) + 1 for text in docs[split])  # + 1: the end of each document, like a newline
        stats[split] = {
            "documents": len(docs[split]),
            "documents_over_max_chars": found[split] - len(docs[split]),
            "units": int(len(ids)),
            "characters": int(chars),
            "chars_per_unit": round(chars / len(ids), 6),
            "unknown_rate": round(float((ids == UNK_ID).mean()), 5),
        }
    write_vocab(VOCAB, vocab, settings, stats)
    write_json(TOKENS_REPORT, {"unit": t.unit, "vocabulary": len(vocab), "splits": stats})
    left_out = sum(s["documents_over_max_chars"] for s in stats.values())
    print(
        f"generator tokenize: {t.unit} units, vocabulary {len(vocab)}, train {stats['train']['units']} units, "
        f"val unknown rate {stats['val']['unknown_rate']}"
        + (f"; {left_out} documents over generator.data.max_chars left out" if left_out else "")
    )
    return stats
