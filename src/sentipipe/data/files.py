"""A user's own corpus: a CSV, TSV, JSONL or Parquet file with named columns.

Every row that does not reach the output is counted under a reason; a file
that cannot make a data set fails with the file, the row or the column named.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from sentipipe.config import DataParams
from sentipipe.data.formats import read_chunks
from sentipipe.data.labels import map_labels, normalise_label, rating_labels
from sentipipe.errors import DataError

_TAG = re.compile(r"<[^>]{0,200}>")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_SPACE = re.compile(r"\s+")
REPLACEMENT = "\ufffd"


def unescape(text: str) -> str:
    """Literal `\\uXXXX` escapes (as some corpora ship them: `\\u002c`) as the characters they stand for."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def clean_text(text: str, strip_html: bool, unicode_form: str, escapes: bool = False) -> str:
    if escapes:
        text = unescape(text)
    if strip_html:
        text = html.unescape(_TAG.sub(" ", text))
    if unicode_form != "none":
        text = unicodedata.normalize(unicode_form, text)
    return _SPACE.sub(" ", text).strip()


COLUMNS = ["id", "text", "label", "source"]


class FileIngest:
    """A user's table read chunk by chunk: `chunks()` yields labelled rows, `report()` counts what was dropped.

    Memory stays flat whatever the file's size; the checks that need the whole file (the share of
    undecodable rows, two classes at least) run at the end, before the output is committed.
    """

    def __init__(self, params: DataParams, chunk_rows: int = 50_000):
        self.params, self.paths, self.chunk_rows = params, [Path(p) for p in params.paths], chunk_rows
        self.path = self.paths[0] if self.paths else Path("")
        self.rows_read = 0
        self.file_rows = 0  # rows read from the current file
        self.dropped: dict[str, int] = {"undecodable": 0}
        self.first_undecodable: str | None = None
        self.labels: dict[str, int] = {}
        self.groups: dict[str, int] = {}

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Every file in turn (a list of files: each file's name is its rows' group unless a column gives it)."""
        p = self.params
        for path in self.paths:
            self.path, self.file_rows = path, 0
            try:
                chunks, _ = read_chunks(path, self.chunk_rows)
                for frame in chunks:
                    yield self._chunk(frame.reset_index(drop=True))
            except (ValueError, OSError, pd.errors.ParserError) as exc:
                raise DataError(
                    f"{path}: cannot be read as {path.suffix.lstrip('.')}: {str(exc).splitlines()[0]}"
                ) from None
        where = self.paths[0] if len(self.paths) == 1 else f"data.path ({len(self.paths)} files)"
        if self.rows_read and self.dropped["undecodable"] / self.rows_read > p.max_undecodable:
            raise DataError(
                f"{where}: {self.dropped['undecodable']} of {self.rows_read} rows hold bytes that are not UTF-8 "
                f"(first: {self.first_undecodable}), over data.max_undecodable={p.max_undecodable}; "
                "re-encode the file as UTF-8"
            )
        if len(self.labels) < 2:
            raise DataError(f"{where}: fewer than two classes remain after reading ({self.labels}); check the labels")

    def _chunk(self, frame: pd.DataFrame) -> pd.DataFrame:
        p, path, offset = self.params, self.path, self.file_rows
        needed = [p.text_column, p.label_column or p.rating_column] + ([p.group_column] if p.group_column else [])
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(
                f"{path}: column(s) {missing} not found; the file has columns {list(map(str, frame.columns))}"
            )
        self.rows_read += len(frame)
        self.file_rows += len(frame)
        text = frame[p.text_column]
        non_text = text.map(lambda v: not isinstance(v, str))
        if non_text.any():
            row = int(non_text.to_numpy().nonzero()[0][0])
            raise DataError(f"{path}: row {offset + row + 1}, column {p.text_column!r}: {text.iloc[row]!r} is not text")
        undecodable = text.str.contains(REPLACEMENT, regex=False)
        self._count("undecodable", int(undecodable.sum()))
        if undecodable.any() and self.first_undecodable is None:
            self.first_undecodable = f"{path.name} row {offset + int(undecodable.to_numpy().nonzero()[0][0]) + 1}"
        if p.rating_column:
            rating = pd.to_numeric(frame[p.rating_column], errors="coerce")
            label = rating_labels(rating, p.threshold)
            self._count("unreadable_rating", int(rating.isna().sum()))
            self._count("neutral_rating", int((label.isna() & rating.notna()).sum()))
        else:
            raw = frame[p.label_column]
            label = map_labels(raw, p.label_map).astype("string")
            spelled = raw.map(normalise_label)
            self._count("missing_label", int(spelled.isna().sum()))
            self._count("unknown_label", int((label.isna() & spelled.notna()).sum()))
        keep = (label.notna() & ~undecodable).to_numpy()
        table = pd.DataFrame(
            {
                "id": [f"{path.name}:{offset + i + 1}" for i in np.flatnonzero(keep)],
                "text": text[keep].map(lambda t: clean_text(t, p.clean_html, p.unicode_form, p.unescape)).to_numpy(),
                "label": label[keep].astype(str).to_numpy(),
                "source": frame[p.group_column][keep].astype(str).to_numpy() if p.group_column else path.stem,
            }
        )
        for name, count in table["label"].value_counts().items():
            self.labels[str(name)] = self.labels.get(str(name), 0) + int(count)
        for name, count in table["source"].value_counts().items():
            self.groups[str(name)] = self.groups.get(str(name), 0) + int(count)
        return table[COLUMNS]

    def _count(self, reason: str, n: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def report(self) -> dict:
        return {
            "source": "file",
            "path": str(self.paths[0]) if len(self.paths) == 1 else [str(p) for p in self.paths],
            "rows_read": self.rows_read,
            "dropped": self.dropped,
            "rows_kept": sum(self.labels.values()),
            "labels": dict(sorted(self.labels.items())),
            "groups": dict(sorted(self.groups.items())),
        }
