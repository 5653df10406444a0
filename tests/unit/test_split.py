import pandas as pd
import pytest

from sentipipe.config import DataParams
from sentipipe.data.split import clean, normalise_key, prepare
from sentipipe.errors import DataError


def corpus(n_per_class: int = 50) -> pd.DataFrame:
    rows = [(f"p{i}", f"good text {i}", "positive", "s") for i in range(n_per_class)]
    rows += [(f"n{i}", f"bad text {i}", "negative", "s") for i in range(n_per_class)]
    return pd.DataFrame(rows, columns=["id", "text", "label", "source"])


def test_normalised_duplicates_never_cross_splits():
    frame = corpus()
    dupes = frame.head(20).assign(text=lambda f: "  " + f["text"].str.upper() + "  ", id=lambda f: f["id"] + "x")
    parts, report = prepare(pd.concat([frame, dupes]), DataParams(seed=3))
    keys = {name: set(part["text"].map(normalise_key)) for name, part in parts.items()}
    assert not (keys["train"] & keys["val"]) and not (keys["train"] & keys["test"]) and not (keys["val"] & keys["test"])
    assert report["dropped"]["duplicate_text"] == 20
    assert report["rows_kept"] == 100


def test_conflicting_labels_and_empty_texts_are_dropped_and_counted():
    frame = corpus(5)
    extra = pd.DataFrame(
        [("c1", "GOOD TEXT 1", "negative", "s"), ("e1", "   ", "positive", "s"), ("e2", None, "negative", "s")],
        columns=frame.columns,
    )
    cleaned, dropped = clean(pd.concat([frame, extra]))
    assert dropped == {"empty_text": 2, "conflicting_labels": 2, "duplicate_text": 0}
    assert "good text 1" not in set(cleaned["text"])


def test_split_is_stratified_seeded_and_sized():
    params = DataParams(val_size=0.1, test_size=0.2, seed=7)
    parts, report = prepare(corpus(100), params)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [140, 20, 40]
    for part in parts.values():
        counts = part["label"].value_counts()
        assert counts["positive"] == counts["negative"]
    again, _ = prepare(corpus(100), params)
    assert parts["test"]["id"].tolist() == again["test"]["id"].tolist()
    assert report["splits"]["test"]["labels"] == {"negative": 20, "positive": 20}


def test_max_rows_keeps_a_stratified_sample():
    parts, report = prepare(corpus(100), DataParams(max_rows=50))
    assert report["rows_kept"] == 50 and report["dropped"]["over_max_rows"] == 150
    assert pd.concat(parts.values())["label"].value_counts().to_dict() == {"positive": 25, "negative": 25}


def test_a_single_class_is_refused():
    frame = corpus().query("label == 'positive'")
    with pytest.raises(DataError, match="at least two classes"):
        prepare(frame, DataParams())


def test_too_few_rows_for_a_stratified_split_is_a_clear_error():
    with pytest.raises(DataError, match="cannot split|would lack"):
        prepare(corpus(2), DataParams())


def test_whole_groups_can_be_held_out_as_an_out_of_domain_test():
    frame = corpus(60).assign(source=["a", "b", "c"] * 40)
    parts, _ = prepare(frame, DataParams(test_groups=["c"], val_size=0.25))
    assert set(parts["test"]["source"]) == {"c"} and len(parts["test"]) == 40
    assert "c" not in set(parts["train"]["source"]) | set(parts["val"]["source"])
    assert len(parts["val"]) == 20
    with pytest.raises(DataError, match=r"data.test_groups: \['z'\] not found; the groups are \['a', 'b', 'c'\]"):
        prepare(frame, DataParams(test_groups=["z"]))


def test_a_given_validation_group_is_the_whole_val_split_and_test_is_drawn_from_the_rest():
    frame = corpus(60).assign(source=(["train"] * 50 + ["dev"] * 10) * 2)
    parts, report = prepare(frame, DataParams(val_groups=["dev"], test_size=0.2, seed=5))
    assert set(parts["val"]["source"]) == {"dev"} and len(parts["val"]) == 20
    assert set(parts["train"]["source"]) == set(parts["test"]["source"]) == {"train"}
    assert len(parts["test"]) == 20 and len(parts["train"]) == 80
    both, _ = prepare(
        frame.assign(source=(["train"] * 45 + ["test"] * 5 + ["dev"] * 10) * 2),
        DataParams(val_groups=["dev"], test_groups=["test"]),
    )
    assert [len(both[s]) for s in ("train", "val", "test")] == [90, 20, 10]
    with pytest.raises(DataError, match=r"data.val_groups: \['z'\] not found"):
        prepare(frame, DataParams(val_groups=["z"]))


def test_held_out_groups_are_kept_whole_and_their_texts_leave_the_training_pool():
    frame = corpus(40).assign(source="train")
    official = pd.DataFrame(
        [
            ("t1", "GOOD TEXT 3", "positive", "test"),  # also in the pool: the pool's copy goes
            ("t2", "bad text 5", "positive", "test"),  # in the pool with another label: kept as given
            ("t3", "only in test", "negative", "test"),
            ("t4", "only in test", "negative", "test"),  # a duplicate inside the official part: kept
            ("d1", "good text 7", "positive", "dev"),
            ("d2", "bad text 9", "negative", "dev"),
        ],
        columns=frame.columns,
    )
    parts, report = prepare(pd.concat([frame, official]), DataParams(test_groups=["test"], val_groups=["dev"]))
    assert parts["test"]["id"].tolist() == ["t1", "t2", "t3", "t4"] and parts["val"]["id"].tolist() == ["d1", "d2"]
    pool = set(parts["train"]["text"].map(normalise_key))
    assert not pool & {"good text 3", "bad text 5", "good text 7", "bad text 9"}
    assert report["dropped"]["also_in_held_out_groups"] == 4 and len(parts["train"]) == 76


def test_a_group_cannot_be_held_out_twice():
    with pytest.raises(ValueError, match="share \\['x'\\]"):
        DataParams(val_groups=["x"], test_groups=["x"])


def test_literal_unicode_escapes_can_be_read_as_the_characters_they_name():
    from sentipipe.data.files import clean_text

    raw = r"Plus\u002c tomorrow is Awareness Day\u2019s"
    assert clean_text(raw, False, "NFC", escapes=True) == "Plus, tomorrow is Awareness Day\u2019s"
    assert clean_text(raw, False, "NFC") == raw  # off by default: a backslash is kept as written
