"""Labels come back: `sentipipe feedback` files true labels against logged row ids, and
`sentipipe export-feedback` turns labelled traffic into training rows.

Feedback is appended to the log's `feedback/` folder as Parquet (the newest label of
an id wins), after the whole file is checked: every id must name a logged row and every
label a class of the model, or nothing is written. The export writes text,label rows a
next run adds to its training split (`data.train_extra`); rows whose text is in the
validation or test split (the same normalised key prepare de-duplicates on) are left
out, so labelled traffic never leaks into what the next model is judged on. A log
kept as hashes (`monitoring.text: hash`) has no text to export and is refused.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from sentipipe.data.formats import read_chunks
from sentipipe.data.labels import normalise_label
from sentipipe.data.split import keys_of
from sentipipe.errors import DataError
from sentipipe.io import atomic_write
from sentipipe.monitoring.log import FEEDBACK
from sentipipe.monitoring.monitor import log_dataset, read_feedback, read_log

if TYPE_CHECKING:
    from sentipipe.config import MonitoringParams


def read_labels(path: Path) -> pd.DataFrame:
    """id,label rows from a CSV, TSV, JSONL or Parquet file."""
    if not path.is_file():
        raise DataError(f"{path}: not found")
    try:
        chunks, _ = read_chunks(path, 100_000)
        frame = pd.concat(list(chunks), ignore_index=True)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read: {str(exc).splitlines()[0]}") from None
    missing = [c for c in ("id", "label") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: column(s) {missing} not found; the file has {list(map(str, frame.columns))}")
    return frame[["id", "label"]].astype(str)


def record(params: MonitoringParams, path: Path) -> dict:
    """Check the whole file against the log, then append it; nothing is written if any row is wrong."""
    labels = read_labels(path)
    if labels.empty:
        raise DataError(f"{path}: no rows")
    found = log_dataset(params.log)
    if found is None:
        raise DataError(f"{params.log}: the prediction log is empty; nothing to attach labels to")
    classes = [c.removeprefix("prob_") for c in found.schema.names if c.startswith("prob_")]
    log = read_log(params.log, columns=["id", "request_id", "time"])
    # a one-row request may be named by its request id
    single = log.groupby("request_id")["id"].agg(["count", "first"])
    by_request = single[single["count"] == 1]["first"]
    ids = labels["id"].map(lambda i: by_request.get(i, i))
    known = ids.isin(set(log["id"]))
    if not known.all():
        bad = labels["id"][~known].head(3).tolist()
        raise DataError(
            f"{path}: {int((~known).sum())} of {len(labels)} ids are not in the log {params.log} (first: {bad}); "
            "ids are the `request_id` of a one-row request or `<request_id>/<row>`; nothing was recorded"
        )
    spelled = labels["label"].map(lambda v: _class_of(v, classes))
    if spelled.isna().any():
        bad = labels["label"][spelled.isna()].head(3).tolist()
        raise DataError(f"{path}: labels {bad} are not classes of the model ({classes}); nothing was recorded")
    table = pa.table(
        {
            "id": pa.array(ids.tolist(), pa.string()),
            "true_label": pa.array(spelled.tolist(), pa.string()),
            "received": pa.array([pd.Timestamp.now(tz="UTC")] * len(ids), pa.timestamp("us", "UTC")),
            "from_file": pa.array([path.name] * len(ids), pa.string()),
        }
    )
    fs, root = url_to_fs(params.log)
    folder = f"{root.rstrip('/')}/{FEEDBACK}"
    fs.makedirs(folder, exist_ok=True)
    name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(table, f"{folder}/.{name}.tmp", filesystem=fs)
    fs.mv(f"{folder}/.{name}.tmp", f"{folder}/{name}")
    return {"recorded": len(table), "file": f"{folder}/{name}"}


def _class_of(value: str, classes: list[str]) -> str | None:
    if value in classes:
        return value
    spelled = normalise_label(value)
    return spelled if spelled in classes else None


def export(params: MonitoringParams, output: Path, held_out: list[Path]) -> dict:
    """Labelled logged rows as text,label training rows, without any text of the held-out splits."""
    log = read_log(params.log, columns=["id", "text", "text_sha256", "time"])
    if log.empty:
        raise DataError(f"{params.log}: the prediction log is empty")
    labelled = log.merge(read_feedback(params.log), on="id", how="inner")
    if labelled.empty:
        raise DataError(f"{params.log}: no logged row has a label yet; send some with `sentipipe feedback FILE`")
    if labelled["text"].isna().any():
        raise DataError(
            f"{params.log}: {int(labelled['text'].isna().sum())} labelled rows were logged as hashes only "
            "(monitoring.text: hash): their texts are not kept and cannot become training data"
        )
    blocked: set[int] = set()
    for path in held_out:
        if not path.is_file():
            raise DataError(f"{path}: missing; the export must check against the validation and test splits")
        blocked |= set(keys_of(pd.read_parquet(path, columns=["text"])["text"]).tolist())
    keys = keys_of(labelled["text"])
    leaked = np.isin(keys, np.fromiter(blocked, dtype=np.uint64, count=len(blocked)))
    kept = labelled[~leaked].assign(key=keys[~leaked])
    conflicting = kept.groupby("key")["true_label"].transform("nunique") > 1
    deduplicated = kept[~conflicting].drop_duplicates("key", keep="last")
    out = pd.DataFrame({"text": deduplicated["text"], "label": deduplicated["true_label"]})
    atomic_write(output, lambda tmp: out.to_csv(tmp, index=False))
    return {
        "labelled": int(len(labelled)),
        "in_validation_or_test": int(leaked.sum()),
        "conflicting_labels": int(conflicting.sum()),
        "duplicates": int(len(kept) - conflicting.sum() - len(deduplicated)),
        "written": int(len(out)),
        "output": str(output),
    }
