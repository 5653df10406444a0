"""`sentipipe serve` starts a real `mlflow models serve` on the champion; we talk HTTP to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers import run_tiny_generator, run_tiny_pipeline, tiny_raw, write_params, write_raw_corpus
from tests.servers import free_port, stop, wait_until_up

pytestmark = pytest.mark.integration


def serve(work: Path, *args: str):
    """`sentipipe serve` in `work` on a free port: yields its URL once /ping answers, stops it after."""
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    log = work / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentipipe.cli", "serve", "--port", str(port), *args],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/ping", "sentipipe serve", log, timeout=120)
        yield url
    finally:
        stop(proc)


def trained(tmp_path_factory, name: str, run) -> Path:
    """A workspace where `run` (a tiny pipeline) trained and registered a champion into its own store."""
    work = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
        write_raw_corpus(work)
        run()
    return work


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real server for the module: trained, registered and started once."""
    work = trained(tmp_path_factory, "serve", run_tiny_pipeline)
    write_params(work, tiny_raw())
    yield from serve(work)


@pytest.fixture(scope="module")
def generator_server(tmp_path_factory):
    """The generator's champion, served by the same command with --task generator."""
    work = trained(tmp_path_factory, "serve-generator", run_tiny_generator)
    write_params(work, tiny_raw())
    yield from serve(work, "--task", "generator")


def test_the_generator_is_served_with_per_request_options(generator_server):
    body = {"inputs": ["a wonderful", "Zürich"], "params": {"seed": 3, "max_length": 40, "temperature": 0.7}}
    reply = requests.post(f"{generator_server}/invocations", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    rows = reply.json()["predictions"]
    assert [r["prompt"] for r in rows] == ["a wonderful", "Zürich"]
    assert rows[0]["text"] == "a wonderful" + rows[0]["generated"] and len(rows[0]["generated"]) <= 40
    assert rows[1]["unknown_units"] >= 2  # Z and ü are not in the tiny corpus; answered, not crashed on
    again = requests.post(f"{generator_server}/invocations", json=body, timeout=60).json()["predictions"]
    assert again == rows, "the same seed gives the same text"
    records = {"dataframe_records": [{"prompt": "a wonderful"}], "params": {"seed": 3, "max_length": 40}}
    reply = requests.post(f"{generator_server}/invocations", json=records, timeout=60)
    assert reply.status_code == 200


def test_bad_generation_options_are_client_errors(generator_server):
    body = {"inputs": ["a wonderful"], "params": {"temperature": -2.0}}
    reply = requests.post(f"{generator_server}/invocations", json=body, timeout=60)
    assert reply.status_code == 400 and "temperature must be between" in reply.json()["message"]
    reply = requests.post(f"{generator_server}/invocations", json={"inputs": [None]}, timeout=60)
    assert reply.status_code == 400 and "row 0: text is missing" in reply.json()["message"]


def test_served_champion_labels_raw_text(server):
    body = {"dataframe_records": [{"text": "a brilliant and wonderful film"}, {"text": "a boring and awful film"}]}
    reply = requests.post(f"{server}/invocations", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    assert [p["label"] for p in predictions] == ["positive", "negative"]
    assert all(abs(p["prob_negative"] + p["prob_positive"] - 1) < 1e-5 for p in predictions)

    split = {"dataframe_split": {"columns": ["text"], "data": [["an awful, tedious movie"]]}}
    reply = requests.post(f"{server}/invocations", json=split, timeout=30)
    assert reply.status_code == 200 and reply.json()["predictions"][0]["label"] == "negative"


def test_inputs_as_a_list_of_strings(server):
    reply = requests.post(f"{server}/invocations", json={"inputs": ["a wonderful film", "an awful film"]}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert [p["label"] for p in reply.json()["predictions"]] == ["positive", "negative"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"inputs": [1.5, 2]}, "row 0: text must be a string, got float"),
        ({"inputs": ["fine", None]}, "row 1: text is missing (null)"),
        ({"dataframe_records": [{"text": 7}]}, "row 0: text must be a string, got int"),
    ],
)
def test_numbers_and_nulls_instead_of_text_are_refused_with_the_row(server, body, message):
    reply = requests.post(f"{server}/invocations", json=body, timeout=30)
    assert reply.status_code == 400 and message in reply.json()["message"]


def test_malformed_requests_are_client_errors_with_a_message(server):
    reply = requests.post(
        f"{server}/invocations", data="{not json", headers={"Content-Type": "application/json"}, timeout=30
    )
    assert reply.status_code == 400
    reply = requests.post(f"{server}/invocations", json={"dataframe_records": [{"text": None}]}, timeout=30)
    assert reply.status_code == 400 and "row 0: text is missing (null)" in reply.json()["message"]


def test_wrong_column_is_a_client_error_with_a_message(server):
    reply = requests.post(f"{server}/invocations", json={"dataframe_records": [{"review": "good"}]}, timeout=30)
    assert reply.status_code == 400
    assert "text" in reply.json()["message"]


def test_ten_thousand_rows_in_one_request(server):
    texts = [["a wonderful film"], ["an awful film"]] * 5000
    reply = requests.post(
        f"{server}/invocations", json={"dataframe_split": {"columns": ["text"], "data": texts}}, timeout=300
    )
    assert reply.status_code == 200
    labels = [p["label"] for p in reply.json()["predictions"]]
    assert len(labels) == 10_000 and labels[:2] == ["positive", "negative"]


def test_a_hundred_thousand_character_text_is_truncated_not_refused(server):
    text = ("a wonderful film " * 6000)[:100_000]
    reply = requests.post(f"{server}/invocations", json={"dataframe_records": [{"text": text}]}, timeout=120)
    assert reply.status_code == 200
    prediction = reply.json()["predictions"][0]
    assert prediction["label"] in {"positive", "negative"}
    assert abs(prediction["prob_positive"] + prediction["prob_negative"] - 1) < 1e-5
