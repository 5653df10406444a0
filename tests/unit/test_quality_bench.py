"""bench/quality.py's arms (ours again with other params, on the same splits) and its tables over several splits."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from quality import (  # noqa: E402
    NETWORK,
    corpus,
    corpus_markdown,
    is_arm,
    is_baseline,
    parse_arms,
    summarise_folds,
    summarise_splits,
)


def split(seed: int, ours: float, arm: float, tfidf: float, nbsvm: float) -> dict:
    methods = {
        "ours": {"accuracy": ours, "macro_f1": ours - 0.01, "val_accuracy": 0.80, "behaviour": 0.9},
        "ours (no clauses)": {"accuracy": arm, "macro_f1": arm - 0.01, "val_accuracy": 0.83, "behaviour": 0.7},
        "TF-IDF word+char LR": {"accuracy": tfidf, "macro_f1": tfidf},
        "NBSVM": {"accuracy": nbsvm, "macro_f1": nbsvm},
    }
    return {"seed": seed, "sizes": {"train": 800, "val": 100, "test": 100}, "methods": methods}


def test_an_arm_gathers_its_overrides_in_order_and_a_malformed_one_is_refused():
    arms = parse_arms(["no clauses:classifier.train.rule_clauses=0", "wide:a.b=1", "wide:a.c=2"])
    assert arms == {"no clauses": ["classifier.train.rule_clauses=0"], "wide": ["a.b=1", "a.c=2"]}
    for bad in ("classifier.train.rule_clauses=0", ":a.b=1", "name:a.b"):
        with pytest.raises(SystemExit, match="NAME:section.key=value"):
            parse_arms([bad])
    names = ("ours", "ours (no clauses)", "NBSVM")
    assert [is_baseline(n) for n in names] == [False, False, True]
    assert [is_arm(n) for n in names] == [False, True, False]


def test_several_splits_are_summarised_with_the_arm_paired_and_never_taken_for_the_best_baseline():
    runs = [split(13, 0.80, 0.84, 0.78, 0.79), split(14, 0.82, 0.85, 0.80, 0.81), split(15, 0.78, 0.80, 0.77, 0.76)]
    result = {"splits": runs, **summarise_splits(runs, "ours")}
    assert result["table"]["ours (no clauses)"]["accuracy"][0] == pytest.approx(0.83)
    assert result["tests"]["ours (no clauses)"]["mean_difference"] == pytest.approx(-0.03)
    text = corpus_markdown("tweets", result)
    assert text.startswith("### tweets, 3 splits")
    assert "seeds 13, 14, 15" in text and "ours (no clauses) -0.0300" in text
    assert "ours (no clauses): val accuracy by split 0.8300, 0.8300, 0.8300, behavioural suite 0.700" in text

    one = dict(runs[0])  # one split: the note names the best baseline, not the better arm
    one["methods"] = {
        n: {**m, "interval": [m["accuracy"] - 0.05, m["accuracy"] + 0.05]} for n, m in runs[0]["methods"].items()
    }
    for n in ("ours (no clauses)", "TF-IDF word+char LR", "NBSVM"):
        one["methods"][n]["mcnemar_ours_vs"] = {"p_value": 0.5}
    text = corpus_markdown("tweets", one)
    assert "ours - NBSVM = +0.0100" in text
    assert "Ours - ours (no clauses) = -0.0400 (McNemar p = 0.5)." in text


def test_cross_validation_pairs_ours_with_each_arm_and_compares_the_best_baseline_only_among_baselines():
    folds = [split(13, 0.80, 0.84, 0.78, 0.79), split(14, 0.82, 0.85, 0.80, 0.81), split(15, 0.78, 0.80, 0.77, 0.76)]
    summary = summarise_folds(folds, 0.125)
    assert summary["best_baseline"] == "NBSVM"  # 0.7867 on average; the arm's 0.83 is not a baseline
    assert list(summary["ours_vs_arms"]) == ["ours (no clauses)"]
    assert summary["ours_vs_arms"]["ours (no clauses)"]["mean_difference"] == pytest.approx(-0.03)


def test_the_bench_reads_data_max_rows_as_a_stratified_seeded_sample(tmp_path):
    """`--set data.max_rows=N` (a small corpus cut from a large one) is honoured, not silently ignored."""
    path = tmp_path / "reviews.csv"
    rows = [f"review number {i} was {'great' if i % 4 else 'awful'}" for i in range(80)]
    pd.DataFrame({"text": rows, "label": ["positive" if i % 4 else "negative" for i in range(80)]}).to_csv(path)
    data = {"source": "file", "path": str(path)}
    assert len(corpus(data)) == 80
    sample = corpus({**data, "max_rows": 20})
    assert len(sample) == 20 and (sample["label"] == "negative").sum() == 5  # the corpus's 1:3, kept
    assert sample["text"].tolist() == corpus({**data, "max_rows": 20})["text"].tolist()  # seeded
    assert sample["text"].tolist() != corpus({**data, "max_rows": 20, "seed": 14})["text"].tolist()


def test_the_network_without_its_blend_is_a_row_of_ours_never_the_best_baseline():
    assert is_arm(NETWORK) and not is_baseline(NETWORK)
