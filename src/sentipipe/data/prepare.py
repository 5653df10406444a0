"""Stage prepare: the raw corpus -> de-duplicated, stratified train/val/test splits, in two streamed passes.

The first pass reads the corpus in Parquet batches and keeps, per row, a text
hash, a label code and a group code; the split is decided on those
(data/split.py). The second pass copies each row to its split's file. Memory
grows with the number of rows by a few bytes each, not with the texts.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentipipe.config import DataConfig, DataParams
from sentipipe.data.files import clean_text
from sentipipe.data.formats import read_chunks
from sentipipe.data.paths import PREPARE_REPORT, RAW, prepared
from sentipipe.data.split import SPLIT_NAMES, codes, keys_of, plan, report
from sentipipe.errors import DataError
from sentipipe.io import atomic_paths, parquet_batches, require, write_json

BATCH_ROWS = 50_000


def prepare(params: DataConfig) -> dict:
    require(RAW)
    corpus = pq.ParquetFile(RAW)
    keys, labels, groups, classes, names = [], [], [], [], []
    for batch in parquet_batches(corpus, ["text", "label", "source"], BATCH_ROWS):
        frame = batch.to_pandas()
        keys.append(keys_of(frame["text"]))
        labels.append(codes(frame["label"], classes))
        groups.append(codes(frame["source"], names))
    keys, labels, groups = (
        np.concatenate(x) if x else np.zeros(0, dtype=t)
        for x, t in ((keys, np.uint64), (labels, np.int32), (groups, np.int32))
    )
    where, dropped = plan(keys, labels, groups, params.data, classes, names)

    with atomic_paths(*(prepared(n) for n in SPLIT_NAMES)) as temps, ExitStack() as stack:
        # every split's file appears only when all three are complete
        writers = [stack.enter_context(pq.ParquetWriter(tmp, corpus.schema_arrow)) for tmp in temps]
        start = 0
        for batch in parquet_batches(corpus, batch_size=BATCH_ROWS):
            part, table = where[start : start + batch.num_rows], pa.Table.from_batches([batch])
            for code, writer in enumerate(writers):
                rows = np.flatnonzero(part == code)
                if len(rows):
                    writer.write_table(table.take(rows))
            start += batch.num_rows
        extra = training_only(params.data, keys[where >= 0], classes, corpus.schema_arrow)
        if extra is not None:
            writers[0].write_table(extra[0])
    result = report(where, labels, classes, dropped, len(keys))
    if extra is not None:
        result["train_extra"] = extra[1]
        result["splits"]["train"]["rows"] += extra[1]["added"]
    write_json(PREPARE_REPORT, result)
    sizes = ", ".join(f"{k} {v['rows']}" for k, v in result["splits"].items())
    print(f"prepare: {result['rows_in']} rows in, {result['rows_kept']} kept ({sizes}); dropped {result['dropped']}")
    if extra is not None:
        print(f"prepare: training rows only (data.train_extra): {extra[1]}")
    return result


def training_only(
    params: DataParams, kept: np.ndarray, classes: list, schema: pa.Schema
) -> tuple[pa.Table, dict] | None:
    """`data.train_extra`'s rows for the training split: cleaned as the corpus is, and never a text the corpus
    already holds (so labelled traffic cannot reach the validation or test split, or count twice)."""
    if not params.train_extra:
        return None
    frames = []
    for path in map(Path, params.train_extra):
        if not path.is_file():
            raise DataError(f"data.train_extra: {path} not found (write it with `sentipipe export-feedback`)")
        chunks, _ = read_chunks(path, BATCH_ROWS)
        for frame in chunks:
            missing = [c for c in ("text", "label") if c not in frame.columns]
            if missing:
                raise DataError(f"{path}: column(s) {missing} not found; data.train_extra files hold text,label")
            frames.append(frame.assign(file=path.stem))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["text", "label", "file"])
    frame = frame[frame["text"].map(lambda t: isinstance(t, str))]
    frame["label"] = frame["label"].astype(str)
    unknown = sorted(set(frame["label"]) - set(classes))
    if unknown:
        raise DataError(f"data.train_extra: labels {unknown[:5]} are not classes of the corpus ({sorted(classes)})")
    text = frame["text"].map(lambda t: clean_text(t, params.clean_html, params.unicode_form, params.unescape))
    keys = keys_of(text)
    in_corpus = np.isin(keys, kept) | (keys == 0)
    labels_per_key = frame.groupby(keys)["label"].transform("nunique").to_numpy()
    conflicting = labels_per_key > 1
    first = ~pd.Series(keys).duplicated().to_numpy()
    keep = ~in_corpus & ~conflicting & first
    table = pa.table(
        {
            "id": [f"{f}:{i + 1}" for f, i in zip(frame["file"][keep], np.flatnonzero(keep))],
            "text": text[keep].tolist(),
            "label": frame["label"][keep].tolist(),
            "source": frame["file"][keep].tolist(),
        }
    ).select(schema.names)
    counts = {
        "rows_in": int(len(keys)),
        "in_corpus": int(in_corpus.sum()),
        "conflicting_labels": int((conflicting & ~in_corpus).sum()),
        "duplicate_text": int((~first & ~in_corpus & ~conflicting).sum()),
        "added": int(keep.sum()),
    }
    return table.cast(schema), counts
