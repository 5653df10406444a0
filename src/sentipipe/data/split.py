"""Clean, de-duplicate and split the corpus, stratified and seeded.

Texts are de-duplicated on a normalised key (case and white space folded)
before splitting, so the same sentence can never sit in train and test.
"""

from __future__ import annotations

import re

import pandas as pd
from sklearn.model_selection import train_test_split

from sentipipe.config import DataParams
from sentipipe.errors import DataError

_SPACE = re.compile(r"\s+")


def normalise_key(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop empty texts, conflicting duplicates and repeats; count each reason."""
    dropped: dict[str, int] = {}
    frame = frame.assign(text=frame["text"].astype("string").str.strip())
    empty = frame["text"].isna() | (frame["text"] == "")
    dropped["empty_text"] = int(empty.sum())
    frame = frame[~empty]
    key = frame["text"].map(normalise_key)
    labels_per_key = frame.groupby(key)["label"].nunique()
    conflicting = key.map(labels_per_key) > 1
    dropped["conflicting_labels"] = int(conflicting.sum())
    frame, key = frame[~conflicting], key[~conflicting]
    repeat = key.duplicated(keep="first")
    dropped["duplicate_text"] = int(repeat.sum())
    return frame[~repeat].reset_index(drop=True), dropped


def split(frame: pd.DataFrame, params: DataParams) -> dict[str, pd.DataFrame]:
    """Stratified train/val/test split; raise if a split would lack a class."""
    classes = sorted(frame["label"].unique())
    if len(classes) < 2:
        raise DataError(f"need at least two classes after cleaning, found {classes}")
    if params.test_groups:
        # Out-of-domain test: whole groups held out; train and val come from the other groups.
        groups = frame["source"].astype(str)
        missing = sorted(set(params.test_groups) - set(groups))
        if missing:
            raise DataError(f"data.test_groups: {missing} not found; the groups are {sorted(set(groups))}")
        held = groups.isin(params.test_groups)
        rest, test = frame[~held], frame[held]
        n_val = params.val_size
    else:
        rest, test, n_val = frame, None, params.val_size / (1.0 - params.test_size)
    try:
        if test is None:
            rest, test = train_test_split(
                frame, test_size=params.test_size, stratify=frame["label"], random_state=params.seed
            )
        train, val = train_test_split(rest, test_size=n_val, stratify=rest["label"], random_state=params.seed)
    except ValueError as exc:
        raise DataError(f"cannot split {len(frame)} rows stratified by label: {exc}") from None
    parts = {"train": train, "val": val, "test": test}
    for name, part in parts.items():
        missing = set(classes) - set(part["label"].unique())
        if missing:
            raise DataError(f"split {name!r} would lack class(es) {sorted(missing)}; add data")
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


def subsample(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """A stratified sample of max_rows rows: small, fast runs with the same class balance."""
    if max_rows is None or len(frame) <= max_rows:
        return frame
    sample, _ = train_test_split(frame, train_size=max_rows, stratify=frame["label"], random_state=seed)
    return sample.reset_index(drop=True)


def prepare(frame: pd.DataFrame, params: DataParams) -> tuple[dict[str, pd.DataFrame], dict]:
    cleaned, dropped = clean(frame)
    sampled = subsample(cleaned, params.max_rows, params.seed)
    dropped["over_max_rows"] = int(len(cleaned) - len(sampled))
    parts = split(sampled, params)
    report = {
        "rows_in": int(len(frame)),
        "rows_kept": int(sum(len(p) for p in parts.values())),
        "dropped": dropped,
        "classes": sorted(sampled["label"].unique()),
        "splits": {
            name: {
                "rows": int(len(p)),
                "labels": {str(k): int(v) for k, v in p["label"].value_counts().sort_index().items()},
            }
            for name, p in parts.items()
        },
    }
    return parts, report
