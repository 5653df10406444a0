"""Where the task-free data stages put the corpus, for every later stage of either task."""

from pathlib import Path

SPLITS = ("train", "val", "test")
RAW = Path("data/raw/corpus.parquet")
PREPARED_DIR = Path("data/prepared")
REPORTS = Path("reports/data")
INGEST_REPORT = REPORTS / "ingest.json"
PREPARE_REPORT = REPORTS / "prepare.json"


def prepared(split: str) -> Path:
    return PREPARED_DIR / f"{split}.parquet"
