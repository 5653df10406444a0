"""Stage ingest: the configured corpus source -> the labelled table every later stage reads."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from sentipipe.config import DataConfig, DataParams
from sentipipe.data.files import COLUMNS, FileIngest
from sentipipe.data.labels import label_ratings
from sentipipe.data.paths import INGEST_REPORT, RAW
from sentipipe.data.vader import fetch_sdist, read_vader_corpora
from sentipipe.io import write_json, write_parquet, write_parquet_chunks

SCHEMA = pa.schema([(name, pa.string()) for name in COLUMNS])


def read_corpus(params: DataParams) -> tuple[pd.DataFrame, dict]:
    """Read the configured source whole; return the table and a report of what was dropped and why."""
    if params.source == "file":
        source = FileIngest(params)
        table = pd.concat(list(source.chunks()), ignore_index=True)
        return table.astype({"label": "string"}), source.report()
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


def ingest(params: DataConfig) -> dict:
    """A file is read and written chunk by chunk (memory stays flat); the default corpus is small and read whole."""
    if params.data.source == "file":
        source = FileIngest(params.data)
        write_parquet_chunks(RAW, source.chunks(), SCHEMA)
        report = source.report()
    else:
        table, report = read_corpus(params.data)
        write_parquet(RAW, table)
    write_json(INGEST_REPORT, report)
    print(f"ingest: {report['rows_read']} rows read, {report['rows_kept']} kept, dropped {report['dropped']}")
    return report
