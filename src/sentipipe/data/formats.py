"""The one table of file formats, and how each is read and written (whole, or in chunks).

A table (CSV, TSV, JSONL, Parquet) gives rows with named columns; a `.txt` file
gives documents separated by blank lines and is read only where documents are
wanted (the generator's corpus).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentipipe.errors import DataError
from sentipipe.io import parquet_batches

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
}
TABLES = ("csv", "tsv", "jsonl", "parquet")
_BLANK_LINES = re.compile(r"\n\s*\n")


def file_format(path: Path, allowed: tuple[str, ...] = TABLES) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt not in allowed:
        suffixes = sorted(s for s, f in FORMATS.items() if f in allowed)
        what = "a table" if allowed == TABLES else "a file of this kind"
        raise DataError(f"{path}: {path.suffix or 'no suffix'!r} is not {what}; use one of {suffixes}")
    return fmt


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return path


def read_table(path: Path) -> pd.DataFrame:
    """The whole table as text columns; undecodable bytes become U+FFFD (counted by the caller)."""
    fmt = file_format(_existing(path))
    try:
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            return pd.read_csv(
                path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8", encoding_errors="replace"
            )
        if fmt == "jsonl":
            raw = path.read_bytes().decode("utf-8", errors="replace")
            return pd.read_json(StringIO(raw), lines=True, dtype=False)
        return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {fmt}: {str(exc).splitlines()[0]}") from None


def read_chunks(path: Path, chunk_rows: int) -> tuple[Iterator[pd.DataFrame], int | None]:
    """Chunks of a table and, where the format knows it up front, the row count."""
    fmt = file_format(_existing(path))
    if fmt == "parquet":
        handle = pq.ParquetFile(path)
        return (b.to_pandas() for b in parquet_batches(handle, batch_size=chunk_rows)), handle.metadata.num_rows
    if fmt in ("csv", "tsv"):
        sep = "\t" if fmt == "tsv" else ","
        reader = pd.read_csv(
            path, sep=sep, chunksize=chunk_rows, dtype=str, keep_default_na=False, encoding_errors="replace"
        )
        return reader, None
    handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - the reader owns it until exhausted
    return pd.read_json(handle, lines=True, chunksize=chunk_rows, dtype=False), None


def read_documents(path: Path, text_column: str) -> list[str]:
    """A .txt file is documents separated by blank lines; a table gives one document per row of `text_column`."""
    fmt = file_format(_existing(path), (*TABLES, "text"))
    if fmt == "text":
        raw = path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
        docs = [d.strip("\n") for d in _BLANK_LINES.split(raw)]
    else:
        table = read_table(path)
        if text_column not in table.columns:
            raise DataError(f"{path}: no column {text_column!r}; columns are {list(map(str, table.columns))}")
        docs = [str(t) for t in table[text_column].tolist() if isinstance(t, str)]
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise DataError(f"{path}: no non-empty text found")
    return docs


class TableWriter:
    """Appends frames to one table file; the caller makes it atomic (io.atomic_write)."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt, self.count, self.parquet = path, fmt, 0, None

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "parquet":
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
