"""Stage tokenize: prepared texts -> spaCy tokens -> id arrays per split, the vocabulary from train only.

Streamed, so memory stays flat as the corpus grows: each split is read in
Parquet batches of compute.chunk_rows and tokenized by spaCy's `pipe` (here with
`n_process` workers, or a batch a task on a Ray cluster with compute.engine: ray,
gathered in order), and the tokens are spilled to a temporary file while lengths
and labels are counted.
Then the length is chosen (from the training texts), the vocabulary built from
counts, and the ids written straight into memory-mapped .npy files.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from sentipipe import compute
from sentipipe.config import ComputeParams
from sentipipe.data.paths import SPLITS, prepared
from sentipipe.errors import DataError
from sentipipe.io import parquet_batches, require, write_json
from sentipipe.tasks.classifier import vocab_file
from sentipipe.tasks.classifier.params import ClassifierConfig, TokenizeParams
from sentipipe.tasks.classifier.paths import DATA, TOKENS_REPORT, VOCAB, tokens
from sentipipe.text.encoding import SplitWriter
from sentipipe.text.tokenizer import TokenizerSettings, truncate
from sentipipe.text.tokenizer import tokenize as spacy_tokenize
from sentipipe.text.vocab import UNK_ID, Vocab, build_vocab

SEPARATOR = "\x1f"  # spaCy tokens never hold it (nor any white space)


def chosen_length(p: TokenizeParams, train_lengths: np.ndarray) -> tuple[int, str]:
    """The tokens kept per text, and why: set in params, or the training texts' percentile, at most length_cap."""
    percentile = max(1, int(np.ceil(np.percentile(train_lengths if len(train_lengths) else [1], p.length_percentile))))
    said = f"the training texts' {p.length_percentile:g}th percentile is {percentile}"
    if p.max_length != "auto":
        return int(p.max_length), f"set in params ({said})"
    return min(p.length_cap, percentile), f"{said}, at most length_cap {p.length_cap}"


def _texts(split: str, rows: int) -> Iterator[tuple[list[str], list[str]]]:
    for batch in parquet_batches(prepared(split), ["text", "label"], rows):
        columns = batch.to_pydict()
        yield [str(t) for t in columns["text"]], [str(x) for x in columns["label"]]


def spill_lines(texts: list[str], settings: TokenizerSettings, batch_size: int, n_process: int) -> tuple[str, list]:
    """A batch's tokens as spill-file lines (a line a text) and the token counts: one task on a Ray worker."""
    lines, lengths = [], []
    for token_list in spacy_tokenize(texts, settings, batch_size, n_process):
        lines.append(SEPARATOR.join(token_list) + "\n")
        lengths.append(len(token_list))
    return "".join(lines), lengths


def _spill(
    split: str,
    settings: TokenizerSettings,
    p: TokenizeParams,
    engine: ComputeParams,
    folder: Path,
    usage: compute.Usage,
) -> tuple[Path, np.ndarray, list]:
    """Tokenize a split into a temp file, a line a text; return it with the lengths and the labels."""
    path, lengths, labels = folder / f"{split}.tokens", [], []
    n_process = p.n_process if engine.engine == "local" else 1  # on Ray, a worker is a process
    lines_of = partial(spill_lines, settings=settings, batch_size=p.batch_size, n_process=n_process)
    run = lambda batches: compute.map_chunks(lines_of, (texts for texts, _ in batches), engine, usage)
    with open(path, "w", encoding="utf-8") as out:
        for (_, batch_labels), (lines, batch_lengths) in compute.with_inputs(_texts(split, engine.chunk_rows), run):
            out.write(lines)
            lengths.extend(batch_lengths)
            labels.extend(batch_labels)
    return path, np.asarray(lengths, dtype=np.int64), labels


def _read(path: Path, length: int, policy: str) -> Iterator[list[str]]:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.rstrip("\n")
            yield truncate(line.split(SEPARATOR) if line else [], length, policy)


def _write(path: Path, labels: list, index: dict, vocab: Vocab, length: int, p: TokenizeParams, split: str) -> dict:
    lengths = np.zeros(len(labels), dtype=np.int64)
    total = unknown = 0
    for i, token_list in enumerate(_read(path, length, p.truncation)):  # sizes first: the arrays are preallocated
        lengths[i] = max(len(token_list), 1)
    with SplitWriter(tokens(split), len(labels), int(lengths.sum())) as writer:
        for token_list, label in zip(_read(path, length, p.truncation), labels, strict=True):
            if label not in index:
                raise DataError(f"split {split!r} has a label unseen in train: {label!r}")
            ids = vocab.encode(token_list) if token_list else np.array([UNK_ID], dtype=np.int32)
            writer.add(ids, index[label])
            total += len(ids)
            unknown += int((ids == UNK_ID).sum())
    return {
        "sentences": len(labels),
        "tokens": int(total),
        "unknown_rate": round(unknown / total, 4) if total else 0.0,
        "length_p50_p90_p99_max": [int(x) for x in np.percentile(lengths if len(lengths) else [0], [50, 90, 99, 100])],
    }


def tokenize(params: ClassifierConfig) -> dict:
    p = params.classifier.tokenize
    require(*(prepared(s) for s in SPLITS))
    untruncated = TokenizerSettings(lowercase=p.lowercase, max_length=2**31, special_tokens=p.special_tokens)
    stats: dict = {}
    DATA.mkdir(parents=True, exist_ok=True)
    usage = compute.Usage(params.compute.engine)
    with tempfile.TemporaryDirectory(prefix=".tokens-", dir=DATA) as spill_dir:
        spilled = {s: _spill(s, untruncated, p, params.compute, Path(spill_dir), usage) for s in SPLITS}
        length, rule = chosen_length(p, spilled["train"][1])
        settings = dataclasses.replace(untruncated, max_length=length, truncation=p.truncation)
        counts: Counter = Counter()
        for token_list in _read(spilled["train"][0], length, p.truncation):
            counts.update(token_list)
        vocab, counts = build_vocab([], p.min_freq, p.max_size, counts)
        labels = sorted(set(spilled["train"][2]))
        if len(labels) < 2:
            raise DataError(f"the training split holds {len(labels)} class(es) ({labels}); at least two are needed")
        index = {label: i for i, label in enumerate(labels)}
        for split in SPLITS:
            path, split_lengths, split_labels = spilled[split]
            stats[split] = {
                **_write(path, split_labels, index, vocab, length, p, split),
                "truncated_to_max_length": int((split_lengths > length).sum()),
                "untruncated_p50_p90_p99_max": [
                    int(x) for x in np.percentile(split_lengths if len(split_lengths) else [0], [50, 90, 99, 100])
                ],
            }
    vocab_file.write(VOCAB, vocab_file.VocabFile(vocab, labels, settings, counts))
    report = {"vocabulary": len(vocab), "labels": labels, "max_length": length, "max_length_rule": rule}
    write_json(TOKENS_REPORT, {**report, "truncation": p.truncation, "splits": stats})
    train = stats["train"]
    print(
        f"tokenize: vocabulary {len(vocab)} tokens, labels {labels}, texts cut to {length} tokens "
        f"({p.truncation}; {train['truncated_to_max_length']} of {train['sentences']} training texts were longer), "
        f"train unknown rate {train['unknown_rate']}; spaCy ran {usage.summary()}"
    )
    return stats
