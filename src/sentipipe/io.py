"""Writing stage outputs so that a failed stage leaves nothing half-written."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentipipe.errors import SentipipeError

if TYPE_CHECKING:
    import pandas as pd


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a sibling temp file, then rename it over path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
