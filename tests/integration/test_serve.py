"""`sentipipe serve` (the entry point alone, a bare PATH) serves the champion; we talk HTTP to it.

The classifier's workspace and server are shared with test_serve_malformed.py (conftest.py).
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.helpers import run_tiny_generator, tiny_raw, write_params
from tests.integration.conftest import serve, trained

pytestmark = pytest.mark.integration


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


def test_bad_generation_options_and_prompts_are_client_errors(generator_server):
    body = {"inputs": ["a wonderful"], "params": {"temperature": -2.0}}
    reply = requests.post(f"{generator_server}/invocations", json=body, timeout=60)
    assert reply.status_code == 400 and "temperature must be between" in reply.json()["message"]
    for prompts, message in (([None], "row 0: prompt is missing"), ([["a", "b"]], "row 0: prompt must be a string")):
        reply = requests.post(f"{generator_server}/invocations", json={"inputs": prompts}, timeout=60)
        assert reply.status_code == 400 and message in reply.json()["message"], reply.text


def test_the_generator_takes_csv_and_empty_batches(generator_server):
    reply = post(generator_server, "prompt\na wonderful\n", "text/csv")
    assert reply.status_code == 200 and reply.json()["predictions"][0]["prompt"] == "a wonderful"
    reply = post(generator_server, {"inputs": []})
    assert reply.status_code == 200 and reply.json()["predictions"] == []


def test_generation_options_of_the_wrong_type_are_client_errors(generator_server):
    for params in ({"temperature": "hot"}, {"seed": None}, {"max_length": [1]}, {"top_k": True}, {"seed": 1.5}):
        reply = post(generator_server, {"inputs": ["a wonderful"], "params": params})
        assert reply.status_code == 400 and reply.json()["message"], (params, reply.text)


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


def post(url: str, body, content_type: str = "application/json") -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return requests.post(f"{url}/invocations", data=data, headers={"Content-Type": content_type}, timeout=60)


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": ["a wonderful film", "an awful film"]},
        {"instances": ["a wonderful film", "an awful film"]},
        {"inputs": {"text": ["a wonderful film", "an awful film"]}},
        {"inputs": [{"text": "a wonderful film"}, {"text": "an awful film"}]},
        {"dataframe_records": [{"text": "a wonderful film"}, {"text": "an awful film"}]},
        {"dataframe_split": {"columns": ["text"], "data": [["a wonderful film"], ["an awful film"]]}},
        "text\na wonderful film\nan awful film\n",
    ],
    ids=["inputs", "instances", "inputs-columns", "inputs-records", "records", "split", "csv"],
)
def test_every_input_form_of_the_scoring_protocol_labels_text(server, body):
    reply = post(server, body, "text/csv" if isinstance(body, str) else "application/json")
    assert reply.status_code == 200, reply.text
    assert [p["label"] for p in reply.json()["predictions"]] == ["positive", "negative"]


@pytest.mark.parametrize(
    "body",
    [{"inputs": []}, {"instances": []}, {"dataframe_split": {"columns": ["text"], "data": []}}, "text\n"],
    ids=["inputs", "instances", "split", "csv"],
)
def test_an_empty_batch_gets_empty_predictions(server, body):
    reply = post(server, body, "text/csv" if isinstance(body, str) else "application/json")
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == []


@pytest.mark.parametrize(
    "body, message",
    [
        ({"inputs": [1.5, 2]}, "row 0: text must be a string, got float"),
        ({"inputs": ["fine", None]}, "row 1: text is missing (null)"),
        ({"inputs": [["a", "b"]]}, "row 0: text must be a string, got list"),
        ({"inputs": ["fine", True]}, "row 1: text must be a string, got bool"),
        ({"inputs": [{"text": {"nested": 1}}]}, "row 0: text must be a string, got dict"),
        ({"dataframe_records": [{"text": 7}]}, "row 0: text must be a string, got int"),
        ({"dataframe_records": [{"review": "good"}]}, "missing inputs ['text']"),
        ("review\ngood\n", "missing inputs ['text']"),
    ],
)
def test_anything_but_text_is_a_client_error_that_names_the_row_or_column(server, body, message):
    reply = post(server, body, "text/csv" if isinstance(body, str) else "application/json")
    assert reply.status_code == 400 and message in reply.json()["message"], reply.text


def test_the_model_signature_says_what_the_model_takes(classifier_work):
    import mlflow
    from mlflow.models import get_model_info

    # the store named outright: a stage run in this process before (a fixture training its own model)
    # leaves MLflow's process-wide tracking URI set, and it wins over the environment
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{classifier_work / 'mlflow.db'}")
    try:
        info = get_model_info("models:/tiny-classifier@champion")
    finally:
        mlflow.set_tracking_uri(before)
    assert info.signature.inputs.to_dict() == [{"type": "string", "name": "text", "required": True}]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == ["label", "prob_negative", "prob_positive"]


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


def test_a_request_can_ask_why_token_by_token(server):
    reply = post(server, {"inputs": ["a wonderful film", "an awful film"], "params": {"explain": True}})
    assert reply.status_code == 200, reply.text
    first, second = reply.json()["predictions"]
    assert first["label"] == "positive" and first["tokens"] == ["a", "wonderful", "film"]
    toward = first["contributions"]["positive"]
    assert len(toward) == 3 and max(toward) == toward[1], "'wonderful' pushed hardest towards positive"
    assert second["label"] == "negative" and abs(first["prob_positive"] + first["prob_negative"] - 1) < 1e-5
    for params, message in (
        ({"explain": "yes"}, "explain must be true or false"),
        ({"why": True}, "unknown parameter"),
    ):
        reply = post(server, {"inputs": ["fine"], "params": params})
        assert reply.status_code == 400 and message in reply.json()["message"], reply.text


def test_workers_really_are_separate_processes(classifier_work):
    """--workers 2: two server processes, each with the model, answering on one port (mlflow#15689).

    Once, on CI, a fixed loop of 40 rounds was answered by one process only: /ping answers as soon as
    one worker is up, the other may still be loading the model, and idle workers race for each accept,
    which the same one can keep winning. So ask until both have answered, with a new connection and a
    varied pause each time, for at most 90 s.
    """
    seen = set()
    for url in serve(classifier_work, "--workers", "2"):
        deadline = time.monotonic() + 90
        asked = 0
        while len(seen) < 2 and time.monotonic() < deadline:
            with requests.Session() as session:  # a new connection each time
                seen.add(session.get(f"{url}/version", timeout=10).json()["pid"])
            assert post(url, {"inputs": ["a wonderful film"]}).json()["predictions"][0]["label"] == "positive"
            asked += 1
            time.sleep(0.02 * (asked % 7))  # varied pauses: which idle worker wins the accept is a race
        for _ in range(20):  # and no third process answers
            with requests.Session() as session:
                seen.add(session.get(f"{url}/version", timeout=10).json()["pid"])
    log = (classifier_work / "serve.log").read_text(errors="replace")[-3000:]
    assert len(seen) == 2, f"answers came from {len(seen)} process(es) in {asked} requests; the server said:\n{log}"
