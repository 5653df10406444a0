"""Batch prediction I/O, with a simple scorer standing in for the model (the model is tested elsewhere)."""

import json
from functools import partial

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sentipipe.batch import predict_file
from sentipipe.errors import DataError


def score(texts):
    pos = [float("good" in t) for t in texts]
    return pd.DataFrame({"label": ["positive" if p else "negative" for p in pos], "prob_positive": pos})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_every_format_round_trips_in_chunks(tmp_path, suffix):
    frame = pd.DataFrame(
        {"id": [str(i) for i in range(25)], "text": ["good" if i % 2 else "bad, x" for i in range(25)]}
    )
    source = tmp_path / f"in{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    elif suffix == ".tsv":
        frame.to_csv(source, index=False, sep="\t")
    elif suffix == ".jsonl":
        frame.to_json(source, orient="records", lines=True)
    else:
        frame.to_parquet(source)
    target = tmp_path / f"out{suffix}"
    assert predict_file(partial(map, score), source, target, chunk_rows=4, progress=False) == 25
    if suffix == ".parquet":
        out = pq.read_table(target).to_pandas()
    elif suffix == ".jsonl":
        out = pd.DataFrame([json.loads(line) for line in target.read_text().splitlines()])
    else:
        out = pd.read_csv(target, sep="\t" if suffix == ".tsv" else ",", dtype={"id": str})
    assert out["id"].tolist() == frame["id"].tolist()
    assert out["label"].tolist() == ["positive" if i % 2 else "negative" for i in range(25)]


def test_missing_column_names_the_columns_and_leaves_no_output(tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"review": ["good"]}).to_csv(source, index=False)
    with pytest.raises(DataError, match=r"no column 'text'; columns are \['review'\]"):
        predict_file(partial(map, score), source, tmp_path / "out.csv", progress=False)
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_a_non_text_row_is_named(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "good"}\n{"text": "fine"}\n{"text": 3}\n')
    with pytest.raises(DataError, match="row 2, column 'text': not a text"):
        predict_file(partial(map, score), source, tmp_path / "out.jsonl", chunk_rows=2, progress=False)
    assert not (tmp_path / "out.jsonl").exists()


def test_unknown_formats_and_missing_files_are_clear(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        predict_file(partial(map, score), tmp_path / "nope.csv", tmp_path / "out.csv", progress=False)
    (tmp_path / "in.xlsx").write_text("x")
    with pytest.raises(DataError, match="'.xlsx' is not a table; use one of"):
        predict_file(partial(map, score), tmp_path / "in.xlsx", tmp_path / "out.csv", progress=False)
