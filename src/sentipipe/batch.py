"""Batch prediction over CSV, JSONL or Parquet files, streamed in chunks.

Memory stays flat whatever the file's size: one chunk is read, scored and
appended at a time, and the output appears under its name only when complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from sentipipe.errors import DataError
from sentipipe.io import atomic_write

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def file_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(f"{path}: unknown format {path.suffix!r}; use one of {sorted(FORMATS)}") from None


def read_chunks(path: Path, chunk_rows: int) -> tuple[Iterator[pd.DataFrame], int | None]:
    """Chunks of the file and, where the format knows it up front, the row count."""
    if not path.is_file():
        raise DataError(f"{path}: input file not found")
    fmt = file_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        handle = pq.ParquetFile(path)
        return (b.to_pandas() for b in handle.iter_batches(batch_size=chunk_rows)), handle.metadata.num_rows
    if fmt in ("csv", "tsv"):
        sep = "\t" if fmt == "tsv" else ","
        return pd.read_csv(path, sep=sep, chunksize=chunk_rows, dtype=str, keep_default_na=False), None
    return pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False), None


class _Writer:
    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt, self.count, self.parquet = path, fmt, 0, None

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table)
        elif self.fmt in ("csv", "tsv"):
            frame.to_csv(
                self.path, mode="a", header=self.count == 0, index=False, sep="\t" if self.fmt == "tsv" else ","
            )
        else:
            with open(self.path, "a", encoding="utf-8") as fh:
                frame.to_json(fh, orient="records", lines=True, force_ascii=False)
        self.count += len(frame)

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        elif self.count == 0:
            self.path.write_text("")


def predict_file(
    predict: Callable[[list[str]], pd.DataFrame],
    source: Path,
    target: Path,
    text_column: str = "text",
    chunk_rows: int = 10_000,
    progress: bool = True,
) -> int:
    """Score every row of `source` into `target` (input columns + label + prob_*); return the row count."""
    import sys

    from tqdm import tqdm

    chunks, total = read_chunks(source, chunk_rows)
    fmt = file_format(target)
    written = 0

    def write(tmp: Path) -> None:
        nonlocal written
        writer = _Writer(tmp, fmt)
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
                    writer.write(pd.concat([chunk.reset_index(drop=True), out.reset_index(drop=True)], axis=1))
                    bar.update(len(chunk))
        finally:
            writer.close()
        written = writer.count

    atomic_write(target, write)
    return written
