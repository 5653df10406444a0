"""`sentipipe serve` starts a real `mlflow models serve` on the champion; we talk HTTP to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import run_tiny_pipeline as run_pipeline

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_workspace, mlflow_store):
    run_pipeline()
    (tiny_workspace / "params.yaml").write_text("register:\n  model_name: tiny-sentiment\n")
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentipipe.cli", "serve", "--port", str(port)],
        cwd=tiny_workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early:\n{proc.stdout.read().decode()[-3000:]}")
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.5)
    else:
        pytest.fail("server did not answer /ping within 120 s")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


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


def test_wrong_column_is_a_client_error_with_a_message(server):
    reply = requests.post(f"{server}/invocations", json={"dataframe_records": [{"review": "good"}]}, timeout=30)
    assert reply.status_code == 400
    assert "text" in reply.json()["message"]
