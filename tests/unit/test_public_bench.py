"""bench/public.py: kept baselines read back only for the same splits, figure and code; what the page says."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from public import CORPORA, DOCS, BaselineCache, _resumed, carry_rows, page  # noqa: E402


def _frames(flip: bool = False) -> dict:
    labels = ["positive", "negative"] * 3
    if flip:
        labels[0] = "negative"
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(6)], "label": labels, "group": "x"})
    return {s: frame for s in ("train", "val", "test")}


def test_kept_baseline_is_read_back_only_for_the_same_splits_and_figure(tmp_path):
    path = tmp_path / "baselines.json"
    hit = {
        "preds": {"val": np.array([0, 1, 1]), "test": np.array([1, 0, 0])},
        "row": {"kind": "baseline", "seconds": 3.5},
    }
    cache = BaselineCache(path, _frames(), "accuracy")
    assert cache.get("NB-LR") is None  # nothing kept yet
    cache.put("NB-LR", hit)
    cache.put("NBSVM", {**hit, "row": {"kind": "baseline", "seconds": 9.0}})  # a second method keeps the first

    again = BaselineCache(path, _frames(), "accuracy").get("NB-LR")
    assert again["row"] == {"kind": "baseline", "seconds": 3.5}
    assert again["preds"]["test"].tolist() == [1, 0, 0] and again["preds"]["val"].dtype == np.int64
    assert BaselineCache(path, _frames(), "accuracy").get("NBSVM")["row"]["seconds"] == 9.0
    assert BaselineCache(path, _frames(flip=True), "accuracy").get("NB-LR") is None  # one label changed
    assert BaselineCache(path, _frames(), "macro_recall").get("NB-LR") is None  # another figure chose C
    with threadpool_limits(1):  # a fit on one BLAS thread may end elsewhere than on two: not the same baseline
        one_thread = BaselineCache(path, _frames(), "accuracy")
    assert (one_thread.key == cache.key) == all(t["num_threads"] == 1 for t in threadpool_info())


def test_a_row_resumed_after_a_kill_says_what_was_not_run_again():

    assert _resumed({"resumed_stages": [], "teacher": None}) == ""  # a row that ran straight through says nothing
    row = {
        "resumed_stages": ["ingest", "prepare", "tokenize", "embed"],
        "teacher": {"resumed_after_epoch": 2, "resumed_labelled_parts": 7},
    }
    assert _resumed(row) == (
        "stages ingest, prepare, tokenize, embed finished before it; the teacher resumed after epoch 2; "
        "7 labelled parts kept"
    )


def test_the_page_says_why_a_corpus_has_no_distill_row_only_while_it_has_none():
    imdb = json.loads((DOCS / "benchmarks" / "imdb.json").read_text())
    imdb["methods"].pop("sentipipe, distill set", None)
    assert CORPORA["imdb"].no_distill in page([imdb])
    imdb["methods"]["sentipipe, distill set"] = imdb["methods"]["sentipipe, default"]
    assert CORPORA["imdb"].no_distill not in page([imdb])


def test_a_run_of_the_default_set_alone_keeps_the_distill_row_marked_with_when_it_was_measured(tmp_path):
    sst2 = json.loads((DOCS / "benchmarks" / "sst2.json").read_text())
    distilled = {k: v for k, v in sst2["methods"]["sentipipe, distill set"].items() if k != "carried"}
    flags = ["classifier.distill.enabled=true", "classifier.search.trials=0"]
    sst2 = {**sst2, "methods": {**sst2["methods"], "sentipipe, distill set": distilled}, "distill_flags": flags}
    previous = tmp_path / "sst2.json"  # a run of both sets
    previous.write_text(json.dumps({**sst2, "git_commit": "abc1234", "date": "2026-12-01"}))
    rerun = {**sst2, "methods": {k: v for k, v in sst2["methods"].items() if k != "sentipipe, distill set"}}
    carry_rows(rerun, previous)
    kept = rerun["methods"]["sentipipe, distill set"]
    assert kept["test"] == distilled["test"]
    assert kept["carried"] == {"git_commit": "abc1234", "date": "2026-12-01", "distill_flags": flags}
    text = page([{**rerun, "distill_flags": None}])  # a run without --distill has no flags of its own
    assert f"`-S {sst2['distill_flags'][0]}" in text, "the carried row names the flags it ran with"
    assert "| sentipipe, distill set (2026-12-01) |" in text and "measured 2026-12-01 at commit abc1234" in text
    assert "| sentipipe, default |" in text, "the row run now carries no date of its own"
    previous.write_text(json.dumps(rerun))  # carried twice: still the commit it was measured at
    again = {**rerun, "methods": {k: v for k, v in rerun["methods"].items() if k != "sentipipe, distill set"}}
    carry_rows(again, previous)
    assert again["methods"]["sentipipe, distill set"]["carried"]["git_commit"] == "abc1234"
    rows = {**sst2, "methods": dict(sst2["methods"])}
    carry_rows(rows, previous)
    assert "carried" not in rows["methods"]["sentipipe, distill set"], "a row run again is not replaced"
