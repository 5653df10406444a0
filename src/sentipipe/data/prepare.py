"""Stage prepare: the raw corpus -> de-duplicated, stratified train/val/test splits, in two streamed passes.

The first pass reads the corpus in Parquet batches and keeps, per row, a text
hash, a label code and a group code; the split is decided on those
(data/split.py). The second pass copies each row to its split's file. Memory
grows with the number of rows by a few bytes each, not with the texts.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sentipipe.config import DataConfig
from sentipipe.data.paths import PREPARE_REPORT, RAW, prepared
from sentipipe.data.split import SPLIT_NAMES, codes, keys_of, plan, report
from sentipipe.io import atomic_paths, require, write_json

BATCH_ROWS = 50_000


def prepare(params: DataConfig) -> dict:
    require(RAW)
    corpus = pq.ParquetFile(RAW)
    keys, labels, groups, classes, names = [], [], [], [], []
    for batch in corpus.iter_batches(batch_size=BATCH_ROWS, columns=["text", "label", "source"]):
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
        for batch in corpus.iter_batches(batch_size=BATCH_ROWS):
            part, table = where[start : start + batch.num_rows], pa.Table.from_batches([batch])
            for code, writer in enumerate(writers):
                rows = np.flatnonzero(part == code)
                if len(rows):
                    writer.write_table(table.take(rows))
            start += batch.num_rows
    result = report(where, labels, classes, dropped, len(keys))
    write_json(PREPARE_REPORT, result)
    sizes = ", ".join(f"{k} {v['rows']}" for k, v in result["splits"].items())
    print(f"prepare: {result['rows_in']} rows in, {result['rows_kept']} kept ({sizes}); dropped {result['dropped']}")
    return result
