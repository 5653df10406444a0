"""Batch prediction over CSV, JSONL or Parquet files, streamed in chunks.

Memory stays flat whatever the file's size: one chunk is read, scored and
appended at a time, and the output appears under its name only when complete.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from sentipipe.data.formats import TableWriter, file_format, read_chunks
from sentipipe.errors import DataError
from sentipipe.io import atomic_write


def predict_file(
    predict: Callable[[list[str]], pd.DataFrame],
    source: Path,
    target: Path,
    text_column: str = "text",
    chunk_rows: int = 10_000,
    progress: bool = True,
) -> int:
    """Score every row of `source` into `target` (input columns + label + prob_*); return the row count.

    An input column named like an output column (`label` in a labelled file) is written as `input_label`.
    """
    chunks, total = read_chunks(source, chunk_rows)
    fmt = file_format(target)
    written = 0

    def write(tmp: Path) -> None:
        nonlocal written
        writer = TableWriter(tmp, fmt)
        try:
            with tqdm(total=total, unit="rows", disable=not (progress and sys.stderr.isatty())) as bar:
                for chunk in chunks:
                    if text_column not in chunk.columns:
                        raise DataError(
                            f"{source}: no column {text_column!r}; columns are {list(map(str, chunk.columns))}"
                        )
                    texts = chunk[text_column]
                    bad = texts.map(lambda v: not isinstance(v, str))
                    if bad.any():
                        row = writer.count + int(bad.to_numpy().nonzero()[0][0])
                        raise DataError(f"{source}: row {row}, column {text_column!r}: not a text")
                    out = predict(texts.tolist())
                    # an input column the output also names (a labelled file's `label`) is kept as `input_<name>`
                    chunk = chunk.rename(columns={c: f"input_{c}" for c in out.columns if c in chunk.columns})
                    writer.write(pd.concat([chunk.reset_index(drop=True), out.reset_index(drop=True)], axis=1))
                    bar.update(len(chunk))
        finally:
            writer.close()
        written = writer.count

    atomic_write(target, write)
    return written
