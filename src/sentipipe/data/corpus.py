"""Turn a corpus source into the labelled table every later stage reads."""

from __future__ import annotations

import pandas as pd

from sentipipe.config import DataParams
from sentipipe.data.vader import fetch_sdist, read_vader_corpora

COLUMNS = ["id", "text", "label", "source"]


def rating_labels(rating: pd.Series, threshold: float) -> pd.Series:
    """positive above +threshold, negative below -threshold, missing (to be dropped) otherwise."""
    label = pd.Series(pd.NA, index=rating.index, dtype="string")
    label[rating > threshold] = "positive"
    label[rating < -threshold] = "negative"
    return label


def label_ratings(frame: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, int]:
    """Label the frame's `rating` column; drop (and count) the ratings inside the threshold."""
    kept = frame.assign(label=rating_labels(frame["rating"], threshold)).dropna(subset=["label"])
    return kept, int(len(frame) - len(kept))


def ingest(params: DataParams) -> tuple[pd.DataFrame, dict]:
    """Read the configured source; return the table and a report of what was dropped and why."""
    if params.source == "file":
        from sentipipe.data.files import ingest_file

        return ingest_file(params)
    raw, parse_report = read_vader_corpora(list(params.corpora), fetch_sdist())
    labelled, neutral = label_ratings(raw, params.threshold)
    table = labelled[COLUMNS].reset_index(drop=True).astype({"label": "string"})
    report = {
        "source": params.source,
        "corpora": parse_report,
        "rows_read": int(len(raw) + sum(c["malformed"] for c in parse_report.values())),
        "dropped": {
            "malformed_line": int(sum(c["malformed"] for c in parse_report.values())),
            "neutral_rating": neutral,
        },
        "rows_kept": int(len(table)),
    }
    return table, report
