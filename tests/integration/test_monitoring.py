"""The monitoring loop on a real tiny champion: log, monitor, feedback, export, and the next run's training data.

A tiny classifier is trained and registered once (its own SQLite store); `sentipipe predict --input`
with `monitoring.enabled` writes the real prediction log, and every command runs through the CLI.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from sentipipe.cli import main as cli_main
from sentipipe.monitoring.log import vectors_of
from sentipipe.monitoring.monitor import read_feedback, read_log, read_vectors
from tests.helpers import NEGATIVE, POSITIVE, run_tiny_pipeline, tiny_raw, write_params
from tests.integration.conftest import trained

pytestmark = pytest.mark.integration

WINDOW = 20
LONG = (
    "The cinematographer's third collaboration with the studio spans four continents, and its production notes "
    "list seventeen locations, two hundred extras and a budget revised twice before principal photography. "
)


def new_texts(n: int, start: int) -> list[str]:
    """New sentences of the corpus's phrases, with numbers it never saw (an unseen word each)."""
    phrases = POSITIVE + NEGATIVE
    return [f"{phrases[i % len(phrases)]} number {start + i}" for i in range(n)]


def truth(texts: list[str]) -> list[str]:
    return ["positive" if any(t.startswith(p) for p in POSITIVE) else "negative" for t in texts]


def in_domain(n: int) -> list[str]:
    """Traffic like the reference: the corpus's own sentences (from the training split: none is held out)."""
    return pd.read_parquet("data/prepared/train.parquet")["text"].sample(n, random_state=0).tolist()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = trained(tmp_path_factory, "monitoring", run_tiny_pipeline)
    return work


@pytest.fixture
def at(work, monkeypatch):
    """Commands run in the workspace, against its store, with monitoring on (window of 20 rows)."""
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")

    def params(log: str = "logs/predictions", **monitoring) -> str:
        settings = {"enabled": True, "log": log, "window": WINDOW, "flush_rows": 7, **monitoring}
        write_params(work, tiny_raw({"monitoring": settings}))
        return str(work / "params.yaml")

    return params


def predict(texts: list[str], name: str, params: str) -> pd.DataFrame:
    pd.DataFrame({"text": texts}).to_parquet(f"{name}.parquet")
    assert cli_main(["--params", params, "predict", "--input", f"{name}.parquet", "--output", f"{name}-out.csv"]) == 0
    return pd.read_csv(f"{name}-out.csv")


def monitor(params: str, *extra: str) -> tuple[int, dict]:
    status = cli_main(["--params", params, "monitor", "--output", "monitoring", *extra])
    return status, json.loads(open("monitoring/report.json").read())


def test_in_domain_traffic_is_logged_whole_and_raises_no_alarm(at, work, capsys):
    params = at()
    texts = in_domain(2 * WINDOW)
    out = predict(texts, "traffic", params)
    log = read_log("logs/predictions")
    assert len(log) == 2 * WINDOW and log["id"].tolist() == out["log_id"].tolist()
    assert log["text"].tolist() == texts and set(log["model_version"]) == {"1"} and set(log["source"]) == {"predict"}
    assert log["label"].tolist() == out["label"].tolist()
    assert (log["tokens"] > 0).all() and "vector" not in log
    assert read_vectors("logs/predictions", "tiny-classifier", "1").shape == (2 * WINDOW, 16)  # 16-dim words
    status, report = monitor(params)
    assert status == 0, capsys.readouterr()
    assert [w["index"] for w in report["windows"]] == [0, 1] and not report["alarm"]
    client = MlflowClient()
    run = client.get_run(report["monitor_run_id"])
    assert run.data.tags["sentipipe.monitor.last_window"] == "1"
    history = client.get_metric_history(run.info.run_id, "drift_p_length")
    assert [m.step for m in history] == [0, 1]
    assert "val_accuracy" in run.data.metrics, "the version's validation figure beside the live ones"


def test_a_window_of_another_domain_raises_one_alarm_naming_what_moved(at, work, capsys):
    params = at()
    predict([LONG * (1 + i % 3) + f"part {i}" for i in range(WINDOW)], "long", params)
    capsys.readouterr()
    status, report = monitor(params)
    printed = capsys.readouterr().out
    assert status == 3
    (window,) = report["windows"]
    assert window["index"] == 2 and window["alarm"] and "length" in window["moved"]
    assert "DRIFT" in printed and "length" in printed
    assert "ALARM" in open("monitoring/report.html").read()
    status, report = monitor(params)  # nothing new: each window is tested once
    assert status == 0 and report["windows"] == []


def test_feedback_refuses_a_file_with_an_unknown_id_or_class_and_writes_nothing(at, work, capsys):
    params = at()
    log = read_log("logs/predictions")
    pd.DataFrame({"id": [log["id"][0], "no-such-request/0"], "label": ["positive", "negative"]}).to_csv(
        "bad-ids.csv", index=False
    )
    pd.DataFrame({"id": [log["id"][0]], "label": ["enthusiastic"]}).to_csv("bad-label.csv", index=False)
    assert cli_main(["--params", params, "feedback", "bad-ids.csv"]) == 1
    assert "no-such-request/0" in capsys.readouterr().err
    assert cli_main(["--params", params, "feedback", "bad-label.csv"]) == 1
    assert "enthusiastic" in capsys.readouterr().err
    assert read_feedback("logs/predictions").empty


def test_labels_fed_back_appear_as_live_accuracy(at, work, capsys):
    params = at()
    log = read_log("logs/predictions")
    first = log.iloc[: 2 * WINDOW]
    labels = truth(first["text"].tolist())
    pd.DataFrame({"id": first["id"], "label": labels}).to_csv("labels.csv", index=False)
    assert cli_main(["--params", params, "feedback", "labels.csv"]) == 0
    status, report = monitor(params, "--retest")
    expected = float((first["label"] == pd.Series(labels)).mean())
    live = report["live_by_version"]["1"]
    assert live["labelled"] == 2 * WINDOW and live["accuracy"] == pytest.approx(expected)
    by_window = {w["index"]: w["live"] for w in report["windows"]}
    assert by_window[0]["labelled"] == WINDOW and by_window[2]["labelled"] == 0


def test_export_leaves_out_held_out_texts_and_the_next_run_trains_on_the_rest(at, work, capsys):
    from sentipipe.config import load_data
    from sentipipe.data.prepare import prepare

    params = at()
    held_out = pd.read_parquet("data/prepared/test.parquet").head(3)
    fresh = new_texts(10, 100)
    out = predict(held_out["text"].tolist() + fresh, "held-out", params)
    labels = held_out["label"].tolist() + truth(fresh)
    pd.DataFrame({"id": out["log_id"], "label": labels}).to_csv("held.csv", index=False)
    assert cli_main(["--params", params, "feedback", "held.csv"]) == 0
    capsys.readouterr()
    assert cli_main(["--params", params, "export-feedback"]) == 0
    printed = capsys.readouterr().out
    exported = pd.read_csv("data/feedback/feedback.csv")
    assert "3 in the validation or test split" in printed
    # the 40 training sentences labelled before, and the 10 new ones; never a held-out text
    assert len(exported) == 2 * WINDOW + 10 and not set(exported["text"]) & set(held_out["text"])

    before = {name: pd.read_parquet(f"data/prepared/{name}.parquet") for name in ("train", "val", "test")}
    write_params(work, tiny_raw({"data": {"train_extra": ["data/feedback/feedback.csv"]}}))
    result = prepare(load_data("params.yaml"))
    after = {name: pd.read_parquet(f"data/prepared/{name}.parquet") for name in ("train", "val", "test")}
    assert result["train_extra"]["added"] == 10 and result["train_extra"]["in_corpus"] == 2 * WINDOW
    for name in ("val", "test"):
        pd.testing.assert_frame_equal(after[name], before[name])  # the held-out splits do not move
    assert len(after["train"]) == len(before["train"]) + 10
    assert set(fresh) <= set(after["train"]["text"])
    assert set(after["train"]["source"]) >= {"feedback"}


def test_a_hash_only_log_keeps_what_drift_needs_and_cannot_be_exported(at, work, capsys):
    params = at(log="logs/hashed", text="hash")
    texts = in_domain(WINDOW)
    out = predict(texts, "hashed", params)
    arrow = pq.read_table("logs/hashed")
    table = arrow.to_pandas()
    assert table["text"].isna().all() and table["text_sha256"].str.len().eq(64).all()
    assert (table["tokens"] > 0).all() and vectors_of(arrow["vector"]).shape == (WINDOW, 16)
    pd.DataFrame({"id": out["log_id"], "label": truth(texts)}).to_csv("h.csv", index=False)
    assert cli_main(["--params", params, "feedback", "h.csv"]) == 0
    assert cli_main(["--params", params, "export-feedback", "--output", "data/feedback/h.csv"]) == 1
    assert "hashes only" in capsys.readouterr().err
    status, report = monitor(params)
    assert status == 0 and len(report["windows"]) == 1


def test_before_any_traffic_the_monitor_says_so_and_succeeds(at, work, capsys):
    """A scheduled monitor on a first deployment: nothing to test is not a failure every hour."""
    params = at(log="logs/not-yet")
    status, report = monitor(params)
    assert status == 0 and report["windows"] == [] and report["rows_logged"] == 0
    assert "no logged rows of tiny-classifier version 1 in logs/not-yet yet" in capsys.readouterr().out


def test_train_extra_outside_the_watched_folder_is_refused(tmp_path):
    from sentipipe.config import DataConfig, parse
    from sentipipe.errors import ConfigError

    with pytest.raises(ConfigError, match="data.train_extra.*data/feedback/"):
        parse({"data": {"train_extra": ["elsewhere/labels.csv"]}}, DataConfig)


def test_a_log_address_no_installed_filesystem_reads_fails_before_serving(tmp_path):
    import argparse

    from sentipipe import cli_models
    from sentipipe.errors import SentipipeError

    params = tmp_path / "params.yaml"
    params.write_text("monitoring:\n  enabled: true\n  log: nosuchprotocol://bucket/predictions\n")
    with pytest.raises(SentipipeError, match="monitoring.log='nosuchprotocol://bucket/predictions' cannot be"):
        cli_models.monitoring_params(argparse.Namespace(params=str(params)))
