"""Stage prepare: the raw corpus -> de-duplicated, stratified train/val/test splits."""

from __future__ import annotations

import pandas as pd

from sentipipe.config import DataConfig
from sentipipe.data.paths import PREPARE_REPORT, RAW, prepared
from sentipipe.data.split import prepare as split_corpus
from sentipipe.io import require, write_json, write_parquet


def prepare(params: DataConfig) -> dict:
    require(RAW)
    parts, report = split_corpus(pd.read_parquet(RAW), params.data)
    for name, part in parts.items():
        write_parquet(prepared(name), part)
    write_json(PREPARE_REPORT, report)
    sizes = ", ".join(f"{k} {v['rows']}" for k, v in report["splits"].items())
    print(f"prepare: {report['rows_in']} rows in, {report['rows_kept']} kept ({sizes}); dropped {report['dropped']}")
    return report
