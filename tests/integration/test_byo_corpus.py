"""A user's own file as the corpus: formats, labels, cleaning, clear failures, multi-class end to end."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from sentipipe.config import DataConfig, load_data, parse
from sentipipe.data.ingest import ingest, read_corpus
from sentipipe.data.paths import INGEST_REPORT, PREPARE_REPORT, RAW
from sentipipe.data.prepare import prepare
from sentipipe.errors import DataError
from sentipipe.io import read_json
from sentipipe.runner import run
from sentipipe.tasks.classifier import paths
from sentipipe.tasks.classifier.tokenize import tokenize
from tests.helpers import NEGATIVE, POSITIVE, classifier_params, run_tiny_pipeline

pytestmark = pytest.mark.integration

NEUTRAL = [
    "the film runs two hours and was shot in spain",
    "it opens on friday in most cities",
    "the cast includes several newcomers",
    "the story follows a family over one summer",
]


def file_params(path, **data):
    return classifier_params({"data": {"source": "file", "path": str(path), **data}})


def three_class_frame(copies: int = 6) -> pd.DataFrame:
    rows = []
    for k in range(copies):
        rows += [(f"{t} no. {k}", "POS") for t in POSITIVE]
        rows += [(f"{t} no. {k}", " negative ") for t in NEGATIVE]
        rows += [(f"{t} no. {k}", "Neutral") for t in NEUTRAL * 2]
    return pd.DataFrame(rows, columns=["review", "sentiment"])


def test_a_three_class_csv_trains_evaluates_registers_and_predicts(workdir, mlflow_store):
    three_class_frame().to_csv(workdir / "reviews.csv", index=False)
    ingest(file_params(workdir / "reviews.csv", text_column="review", label_column="sentiment"))
    run_tiny_pipeline(
        {
            "data": {"source": "file", "path": "reviews.csv", "text_column": "review", "label_column": "sentiment"},
            "classifier": {"train": {"max_steps": 300, "eval_every": 15}},
        }
    )
    metrics = read_json(paths.METRICS)
    assert set(read_json(paths.VOCAB)["labels"]) == {"negative", "neutral", "positive"}
    assert metrics["test"]["accuracy"] >= 0.8 and "recall_neutral" in metrics["test"]
    model = mlflow.pyfunc.load_model("models:/tiny-classifier@champion")
    out = model.predict(pd.DataFrame({"text": ["a brilliant, wonderful film", "the cast includes newcomers"]}))
    assert list(out.columns) == ["label", "prob_negative", "prob_neutral", "prob_positive"]
    assert out["label"].tolist() == ["positive", "neutral"]


def test_formats_labels_ratings_and_cleaning(workdir):
    frame = pd.DataFrame(
        {
            "text": ["<p>Great&nbsp;film</p>", "bad<br/>film", "meh", "ok"],
            "stars": [3.5, -2, 0, "x"],
            "label": [1, 0, 2, 1],
        }
    )
    frame.to_json(workdir / "c.jsonl", orient="records", lines=True)
    rated, report = _ingest(workdir / "c.jsonl", label_column=None, rating_column="stars", clean_html=True)
    assert rated["text"].tolist() == ["Great film", "bad film"]
    assert rated["label"].tolist() == ["positive", "negative"]
    assert report["dropped"] == {"undecodable": 0, "unreadable_rating": 1, "neutral_rating": 1}
    frame.drop(columns="stars").to_parquet(workdir / "c.parquet")
    mapped, report = _ingest(workdir / "c.parquet", label_map={"1": "good", "0": "poor"})
    assert mapped["label"].tolist() == ["good", "poor", "good"] and report["dropped"]["unknown_label"] == 1


def _ingest(path, **data):
    return read_corpus(file_params(path, **data).data)


def test_missing_file_fails_and_writes_nothing(workdir, capsys):
    (workdir / "params.yaml").write_text("data:\n  source: file\n  path: nowhere.csv\n")
    assert run(ingest, load_data) == 1
    assert "nowhere.csv: file not found" in capsys.readouterr().err
    assert not RAW.exists()


def test_absent_column_lists_the_columns_there(workdir):
    pd.DataFrame({"body": ["x"], "stars": [1]}).to_csv(workdir / "c.csv", index=False)
    with pytest.raises(
        DataError, match=r"column\(s\) \['text', 'label'\] not found; the file has columns \['body', 'stars'\]"
    ):
        ingest(file_params(workdir / "c.csv"))
    assert not RAW.exists()


def test_one_class_is_not_a_data_set(workdir):
    pd.DataFrame({"text": ["a", "b"], "label": ["pos", "positive"]}).to_csv(workdir / "c.csv", index=False)
    with pytest.raises(DataError, match="fewer than two classes remain"):
        ingest(file_params(workdir / "c.csv"))


def test_undecodable_rows_over_the_tolerance_fail_with_the_row(workdir):
    rows = b"text,label\n" + b"fine text,pos\n" * 8 + b"caf\xe9 bad bytes,neg\n" + b"more,neg\n"
    (workdir / "c.csv").write_bytes(rows)
    with pytest.raises(DataError, match=r"1 of 10 rows hold bytes that are not UTF-8 \(first: c.csv row 9\)"):
        ingest(file_params(workdir / "c.csv"))
    table, report = _ingest(workdir / "c.csv", max_undecodable=0.2)
    assert report["dropped"]["undecodable"] == 1 and len(table) == 9


def test_file_source_needs_a_path_and_one_label_source():
    with pytest.raises(Exception, match="data.path is required"):
        parse({"data": {"source": "file"}}, DataConfig)
    with pytest.raises(Exception, match="exactly one of data.label_column and data.rating_column"):
        parse({"data": {"source": "file", "path": "x.csv", "rating_column": "stars"}}, DataConfig)


def test_an_unreadable_file_names_the_file_and_the_format(workdir):
    (workdir / "c.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"c.parquet: cannot be read as parquet"):
        ingest(file_params(workdir / "c.parquet"))
    assert not RAW.exists()


def test_the_data_reports_count_tokens_and_truncation(workdir, mlflow_store):
    three_class_frame().to_csv(workdir / "reviews.csv", index=False)
    params = file_params(workdir / "reviews.csv", text_column="review", label_column="sentiment")
    ingest(params)
    prepare(params)
    tokenize(
        classifier_params(
            {
                "data": {"source": "file", "path": "reviews.csv", "text_column": "review", "label_column": "sentiment"},
                "classifier": {"tokenize": {"max_length": 5}},
            }
        )
    )
    report = read_json(paths.TOKENS_REPORT)
    train = report["splits"]["train"]
    assert train["truncated_to_max_length"] == train["sentences"] and train["length_p50_p90_p99_max"][-1] == 5
    assert read_json(PREPARE_REPORT)["splits"]["test"]["labels"].keys() == {"negative", "neutral", "positive"}
    assert read_json(INGEST_REPORT)["labels"] == {"negative": 48, "neutral": 48, "positive": 48}


def test_a_list_of_files_is_one_corpus_whose_groups_are_the_files(workdir):
    frame = three_class_frame(4)
    frame.iloc[::4].to_parquet(workdir / "dev.parquet")
    frame.drop(frame.index[::4]).to_csv(workdir / "train.csv", index=False)
    params = classifier_params(
        {
            "data": {
                "source": "file",
                "path": ["train.csv", "dev.parquet"],
                "text_column": "review",
                "label_column": "sentiment",
                "val_groups": ["dev"],
            }
        }
    )
    ingest(params)
    report = read_json(INGEST_REPORT)
    assert report["groups"] == {"dev": 24, "train": 72} and report["path"] == ["train.csv", "dev.parquet"]
    prepare(params)
    prepared = read_json(PREPARE_REPORT)
    split, dropped = prepared["splits"], prepared["dropped"]
    assert split["val"]["rows"] == 24  # the given part whole, its repeated neutral texts included
    assert split["train"]["rows"] + split["test"]["rows"] + sum(dropped.values()) == 72
    val = pd.read_parquet("data/prepared/val.parquet")
    assert set(val["source"]) == {"dev"} and val["id"].str.startswith("dev.parquet:").all()
    with pytest.raises(DataError, match=r"missing.csv: file not found"):
        read_corpus(
            parse({"data": {**params.data.model_dump(), "path": ["train.csv", "missing.csv"]}}, DataConfig).data
        )
