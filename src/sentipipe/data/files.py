"""A user's own corpus: a CSV, TSV, JSONL or Parquet file with named columns.

Every row that does not reach the output is counted under a reason; a file
that cannot make a data set fails with the file, the row or the column named.
"""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path

import pandas as pd

from sentipipe.config import DataParams
from sentipipe.data.formats import read_table
from sentipipe.data.labels import map_labels, normalise_label, rating_labels
from sentipipe.errors import DataError

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")
REPLACEMENT = "\ufffd"


def clean_text(text: str, strip_html: bool, unicode_form: str) -> str:
    if strip_html:
        text = html.unescape(_TAG.sub(" ", text))
    if unicode_form != "none":
        text = unicodedata.normalize(unicode_form, text)
    return _SPACE.sub(" ", text).strip()


def ingest_file(params: DataParams) -> tuple[pd.DataFrame, dict]:
    path = Path(params.path or "")
    frame = read_table(path)
    needed = [params.text_column, params.label_column or params.rating_column]
    if params.group_column:
        needed.append(params.group_column)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: column(s) {missing} not found; the file has columns {list(map(str, frame.columns))}")
    dropped: dict[str, int] = {}
    rows_read = len(frame)
    text = frame[params.text_column]
    non_text = text.map(lambda v: not isinstance(v, str))
    if non_text.any():
        row = int(non_text.to_numpy().nonzero()[0][0])
        raise DataError(f"{path}: row {row + 1}, column {params.text_column!r}: {text.iloc[row]!r} is not text")
    undecodable = text.str.contains(REPLACEMENT, regex=False)
    dropped["undecodable"] = int(undecodable.sum())
    if rows_read and undecodable.mean() > params.max_undecodable:
        first = int(undecodable.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{path}: {dropped['undecodable']} of {rows_read} rows hold bytes that are not UTF-8 (first: row "
            f"{first + 1}), over data.max_undecodable={params.max_undecodable}; re-encode the file as UTF-8"
        )
    out = pd.DataFrame(
        {
            "id": [f"{path.name}:{i + 1}" for i in range(rows_read)],
            "text": text.map(lambda t: clean_text(t, params.clean_html, params.unicode_form)),
            "source": frame[params.group_column].astype(str) if params.group_column else path.stem,
        }
    )
    if params.rating_column:
        rating = pd.to_numeric(frame[params.rating_column], errors="coerce")
        dropped["unreadable_rating"] = int(rating.isna().sum())
        label = rating_labels(rating, params.threshold)
        dropped["neutral_rating"] = int((label.isna() & rating.notna()).sum())
    else:
        raw = frame[params.label_column]
        label = map_labels(raw, params.label_map).astype("string")
        dropped["missing_label"] = int(raw.map(normalise_label).isna().sum())
        dropped["unknown_label"] = int((label.isna() & raw.map(normalise_label).notna()).sum())
    keep = label.notna() & ~undecodable
    table = out[keep.to_numpy()].assign(label=label[keep].to_numpy()).reset_index(drop=True)
    table = table[["id", "text", "label", "source"]].astype({"label": "string"})
    report = {
        "source": "file",
        "path": str(path),
        "rows_read": rows_read,
        "dropped": dropped,
        "rows_kept": int(len(table)),
        "labels": {str(k): int(v) for k, v in table["label"].value_counts().sort_index().items()},
    }
    if table["label"].nunique() < 2:
        raise DataError(f"{path}: fewer than two classes remain after reading ({report['labels']}); check the labels")
    return table, report
