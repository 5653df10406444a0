"""Clean, de-duplicate and split the corpus, stratified and seeded, from per-row keys rather than texts.

A row is known by a 64-bit hash of its normalised text (case and white space
folded), its label and its group, so deciding where a million rows go holds a
few arrays, not a million strings; the texts are then copied to their split in
a second pass (stages/prepare.py). Texts are de-duplicated on that key before
splitting, so the same sentence can never sit in train and test; texts whose
copies disagree on the label are dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from sentipipe.config import DataParams
from sentipipe.errors import DataError

SPLIT_NAMES = ("train", "val", "test")
DROPPED = -1
_SPACE = re.compile(r"\s+")


def normalise_key(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def text_key(text) -> int:
    """The row's key: a 64-bit hash of its normalised text; 0 for an empty or missing text."""
    if not isinstance(text, str):
        return 0
    key = normalise_key(text)
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1 if key else 0


def keys_of(texts: Iterable) -> np.ndarray:
    return np.fromiter((text_key(t) for t in texts), dtype=np.uint64)


def _clean(keys: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """The rows kept (first copy of each text; no empty texts, no texts with conflicting labels), and the counts."""
    empty = keys == 0
    order = np.lexsort((labels, keys))
    sorted_keys, sorted_labels = keys[order], labels[order]
    new_key = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    new_pair = new_key | np.r_[True, sorted_labels[1:] != sorted_labels[:-1]]
    labels_per_key = np.add.reduceat(new_pair.astype(np.int64), np.flatnonzero(new_key))
    conflicted = np.zeros(len(keys), dtype=bool)
    conflicted[order] = np.repeat(labels_per_key > 1, np.diff(np.r_[np.flatnonzero(new_key), len(keys)]))
    conflicted &= ~empty
    candidate = ~empty & ~conflicted
    _, first = np.unique(np.where(candidate, keys, 0)[candidate], return_index=True)
    keep = np.zeros(len(keys), dtype=bool)
    keep[np.flatnonzero(candidate)[first]] = True
    dropped = {
        "empty_text": int(empty.sum()),
        "conflicting_labels": int(conflicted.sum()),
        "duplicate_text": int(candidate.sum() - keep.sum()),
    }
    return keep, dropped


def _group_rows(params: DataParams, key: str, names: list) -> list[int]:
    wanted = getattr(params, key)
    missing = sorted(set(wanted) - set(names))
    if missing:
        raise DataError(f"data.{key}: {missing} not found; the groups are {sorted(names)}")
    return [names.index(g) for g in wanted]


def sample(rows: np.ndarray, labels: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    """A stratified, seeded sample of `max_rows` of these rows (`data.max_rows`); all of them when null or fewer."""
    if max_rows is None or len(rows) <= max_rows:
        return rows
    kept, _ = train_test_split(rows, train_size=max_rows, stratify=labels, random_state=seed)
    return kept


def plan(keys: np.ndarray, labels: np.ndarray, groups: np.ndarray, params: DataParams, classes: list, names: list):
    """Where every row goes: 0 train, 1 val, 2 test, -1 dropped; and what was dropped, by reason.

    `labels` and `groups` are codes into `classes` and `names`. Whole groups may be held out as the
    test split (`test_groups`) or the validation split (`val_groups`): a benchmark's official parts.
    Those rows are kept as given (only empty texts go), so a held-out part is scored whole; a row of
    the other groups whose text is also in a held-out part is dropped, so nothing held out is trained on.
    """
    test_codes, val_codes = _group_rows(params, "test_groups", names), _group_rows(params, "val_groups", names)
    held_test, held_val = np.isin(groups, test_codes), np.isin(groups, val_codes)
    held = held_test | held_val
    pool = ~held
    keep, dropped = np.zeros(len(keys), dtype=bool), {}
    if pool.any():
        pool_keep, dropped = _clean(keys[pool], labels[pool])
        keep[np.flatnonzero(pool)[pool_keep]] = True
    else:
        dropped = {"empty_text": 0, "conflicting_labels": 0, "duplicate_text": 0}
    empty_held = held & (keys == 0)
    dropped["empty_text"] += int(empty_held.sum())
    keep |= held & ~empty_held
    if held.any():
        seen = np.isin(keys, keys[held & keep]) & ~held & keep
        dropped["also_in_held_out_groups"] = int(seen.sum())
        keep &= ~seen
    rows = np.flatnonzero(keep)
    present = sorted({classes[c] for c in np.unique(labels[rows])})
    if len(present) < 2:
        raise DataError(f"need at least two classes after cleaning, found {present}")
    free = rows[~held[rows]]
    free = sample(free, labels[free], params.max_rows, params.seed)
    dropped["over_max_rows"] = int((keep & ~held).sum() - len(free))
    where = np.full(len(keys), DROPPED, dtype=np.int8)
    given_test, given_val = rows[held_test[rows]], rows[held_val[rows]]
    try:
        if test_codes and val_codes:
            train, val, test = free, given_val, given_test
        elif test_codes:  # out-of-domain test: whole groups held out; train and val from the others
            train, val = train_test_split(
                free, test_size=params.val_size, stratify=labels[free], random_state=params.seed
            )
            test = given_test
        elif val_codes:  # a given validation part (e.g. a benchmark's dev set); test drawn from the others
            train, test = train_test_split(
                free, test_size=params.test_size, stratify=labels[free], random_state=params.seed
            )
            val = given_val
        else:
            rest, test = train_test_split(
                free, test_size=params.test_size, stratify=labels[free], random_state=params.seed
            )
            n_val = params.val_size / (1.0 - params.test_size)
            train, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=params.seed)
    except ValueError as exc:
        raise DataError(f"cannot split {len(free)} rows stratified by label: {exc}") from None
    for code, part in enumerate((train, val, test)):
        where[part] = code
        lacking = set(present) - {classes[c] for c in np.unique(labels[part])}
        if lacking:
            raise DataError(f"split {SPLIT_NAMES[code]!r} would lack class(es) {sorted(lacking)}; add data")
    return where, dropped


def codes(values: pd.Series, known: list) -> np.ndarray:
    """Values as indices into `known`, extended with the new ones."""
    index = {v: i for i, v in enumerate(known)}
    out = np.empty(len(values), dtype=np.int32)
    for i, value in enumerate(values.astype(str)):
        if value not in index:
            index[value] = len(known)
            known.append(value)
        out[i] = index[value]
    return out


def report(where: np.ndarray, labels: np.ndarray, classes: list, dropped: dict, rows_in: int) -> dict:
    return {
        "rows_in": int(rows_in),
        "rows_kept": int((where >= 0).sum()),
        "dropped": dropped,
        "classes": sorted({classes[c] for c in np.unique(labels[where >= 0])}),
        "splits": {
            name: {
                "rows": int((where == code).sum()),
                "labels": {
                    classes[c]: int(n)
                    for c, n in sorted(
                        zip(*np.unique(labels[where == code], return_counts=True)), key=lambda x: classes[x[0]]
                    )
                },
            }
            for code, name in enumerate(SPLIT_NAMES)
        },
    }


def prepare(frame: pd.DataFrame, params: DataParams) -> tuple[dict[str, pd.DataFrame], dict]:
    """The same decisions for a table in memory (tests, benches): the splits and the report."""
    frame = frame.reset_index(drop=True)
    classes, names = [], []
    labels, groups = codes(frame["label"], classes), codes(frame["source"], names)
    where, dropped = plan(keys_of(frame["text"]), labels, groups, params, classes, names)
    parts = {name: frame[where == code].reset_index(drop=True) for code, name in enumerate(SPLIT_NAMES)}
    return parts, report(where, labels, classes, dropped, len(frame))


def clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows prepare would keep before splitting, and the counts of those it drops."""
    frame = frame.reset_index(drop=True)
    keep, dropped = _clean(keys_of(frame["text"]), codes(frame["label"], []))
    return frame[keep].reset_index(drop=True), dropped
