"""Labels from ratings or from label spellings: one rule for every source."""

from __future__ import annotations

import pandas as pd

# Label spellings understood without a label_map (compared case-folded and stripped).
KNOWN_LABELS = {
    "positive": {"positive", "pos", "+", "+1", "good", "1 star positive"},
    "negative": {"negative", "neg", "-", "-1", "bad"},
    "neutral": {"neutral", "neu", "0 neutral", "mixed"},
}


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


def normalise_label(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold() or None


def map_labels(raw: pd.Series, label_map: dict[str, str]) -> pd.Series:
    """Apply label_map (keys compared case-folded), else the known spellings, else keep the value."""
    normalised = raw.map(normalise_label)
    if label_map:
        mapping = {normalise_label(k): v for k, v in label_map.items()}
        return normalised.map(lambda v: mapping.get(v) if v is not None else None)
    known = {spelling: name for name, spellings in KNOWN_LABELS.items() for spelling in spellings}
    return normalised.map(lambda v: known.get(v, v) if v is not None else None)
