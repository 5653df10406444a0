"""Batch prediction over CSV, JSONL or Parquet files, streamed in chunks.

Memory stays flat whatever the file's size: one chunk is read, scored and
appended at a time (a few at a time when an engine scores them in parallel),
and the output appears under its name only when complete.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from sentipipe.compute import with_inputs
from sentipipe.data.formats import TableWriter, file_format, read_chunks
from sentipipe.errors import DataError
from sentipipe.io import atomic_write


def predict_file(
    map_chunks: Callable[[Iterable[list[str]]], Iterator[pd.DataFrame]],
    source: Path,
    target: Path,
    text_column: str = "text",
    chunk_rows: int = 10_000,
    progress: bool = True,
) -> int:
    """Score every row of `source` into `target` (input columns + label + prob_*); return the row count.

    An input column named like an output column (`label` in a labelled file) is written as `input_label`.
    `map_chunks` turns the chunks' texts into output frames in the chunks' order: one at a time
    (`partial(map, score)`), or several at once on an engine (compute.engine: ray). The same chunks make the
    same bytes.
    """
    chunks, total = read_chunks(source, chunk_rows)
    fmt = file_format(target)
    written = 0

    def write(tmp: Path) -> None:
        nonlocal written
        writer = TableWriter(tmp, fmt)
        read_rows = 0

        def checked() -> Iterator[pd.DataFrame]:
            nonlocal read_rows
            for chunk in chunks:
                if text_column not in chunk.columns:
                    raise DataError(f"{source}: no column {text_column!r}; columns are {list(map(str, chunk.columns))}")
                texts = chunk[text_column]
                bad = texts.map(lambda v: not isinstance(v, str))
                if bad.any():
                    row = read_rows + int(bad.to_numpy().nonzero()[0][0])
                    raise DataError(f"{source}: row {row}, column {text_column!r}: not a text")
                read_rows += len(chunk)
                yield chunk

        score = lambda frames: map_chunks(frame[text_column].tolist() for frame in frames)
        try:
            with tqdm(total=total, unit="rows", disable=not (progress and sys.stderr.isatty())) as bar:
                for chunk, out in with_inputs(checked(), score):
                    # an input column the output also names (a labelled file's `label`) is kept as `input_<name>`
                    chunk = chunk.rename(columns={c: f"input_{c}" for c in out.columns if c in chunk.columns})
                    writer.write(pd.concat([chunk.reset_index(drop=True), out.reset_index(drop=True)], axis=1))
                    bar.update(len(chunk))
        finally:
            writer.close()
        written = writer.count

    atomic_write(target, write)
    return written


def frame_rows(model, texts: list[str]) -> pd.DataFrame:
    """A served model's rows for a chunk, as the output's columns (a worker's job on the ray engine)."""
    return pd.DataFrame(model.predict_rows(texts, {}))


def scored_rows(model, texts: list[str]) -> tuple[list[dict], dict, float]:
    """A served model's rows, the features the prediction log keeps, and the milliseconds they took."""
    started = time.perf_counter()
    rows, features = model.scored(texts)
    return rows, features, (time.perf_counter() - started) * 1000
