"""Writing stage outputs so that a failed stage leaves nothing half-written."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentipipe.errors import SentipipeError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq


@contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """Temp files beside `paths`, renamed over them together on success and removed on failure."""
    temps: list[Path] = []
    try:
        for path in map(Path, paths):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            temps.append(Path(tmp))
        yield temps
        for tmp, path in zip(temps, paths, strict=True):
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a sibling temp file, then rename it over path."""
    with atomic_paths(path) as (tmp,):
        write(tmp)
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    """Rows of one shape as CSV; no rows still writes the (empty) file a DVC output needs."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            if rows:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            else:
                fh.write("\n")

    return atomic_write(path, write)


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a handle: np.save would append .npy to the temp name
            np.save(fh, array, allow_pickle=False)

    return atomic_write(path, write)


def write_parquet(path: str | Path, frame: pd.DataFrame) -> Path:
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_parquet_chunks(path: str | Path, frames: Iterable[pd.DataFrame], schema: pa.Schema) -> int:
    """Frames appended to one Parquet file as they come (a row group each); the file appears only when complete."""
    written = 0

    import pyarrow as pa  # noqa: PLC0415 - io is light; only this writer needs Arrow
    import pyarrow.parquet as pq  # noqa: PLC0415

    def write(tmp: Path) -> None:
        nonlocal written
        with pq.ParquetWriter(tmp, schema) as writer:
            for frame in frames:
                writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
                written += len(frame)

    atomic_write(path, write)
    return written


def parquet_batches(
    source: str | Path | pq.ParquetFile, columns: list[str] | None = None, batch_size: int = 50_000
) -> Iterator[pa.RecordBatch]:
    """A Parquet file's rows in order, in record batches of `batch_size` rows (the last one shorter), as
    pyarrow's `iter_batches` gives them, but read a row group at a time: `iter_batches` left memory outside
    Arrow's pool after every pass (0.6 GB a pass over a million reviews' training split, kept until the
    process ended: docs/evidence.md#scale-2026-12-05b), which `read_row_group` gives back."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    handle = source if isinstance(source, pq.ParquetFile) else pq.ParquetFile(source)
    pending: list = []
    held = 0
    for i in range(handle.num_row_groups):
        group = handle.read_row_group(i, columns=columns, use_threads=False)
        at = 0
        while at < group.num_rows:
            take = min(batch_size - held, group.num_rows - at)
            pending.append(group.slice(at, take))
            held, at = held + take, at + take
            if held == batch_size:
                yield pa.concat_tables(pending).combine_chunks().to_batches()[0]
                pending, held = [], 0
    if held:
        yield pa.concat_tables(pending).combine_chunks().to_batches()[0]


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def require(*paths: str | Path) -> None:
    """A stage's inputs exist, or the user is told to run the earlier stages."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise SentipipeError(f"missing input(s) {missing}: run the earlier stages first (dvc repro)")


def cache_dir() -> Path:
    """Where downloads are kept between runs and between copies of the repository ($SENTIPIPE_CACHE)."""
    if os.environ.get("SENTIPIPE_CACHE"):
        return Path(os.environ["SENTIPIPE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sentipipe"
