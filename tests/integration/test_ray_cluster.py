"""compute.engine: ray on a real cluster: a head and a worker node (separate `ray start` processes on this
machine, one CPU each), tokenize and batch prediction submitted to it by the same commands a user runs.

Each output must be byte-identical to the local engine's, and the work must have run on both nodes (the
commands say which nodes computed their chunks; the ids are checked against the cluster's own list).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO, run_tiny_pipeline, tiny_raw, venv_env, write_params
from tests.integration.conftest import trained
from tests.integration.test_teacher import distill
from tests.servers import free_port
from tests.unit.test_teacher_encoders import tiny_checkpoint

pytestmark = pytest.mark.integration

RAY = str(Path(sys.executable).parent / "ray")
SENTIPIPE = str(Path(sys.executable).parent / "sentipipe")
NODE = re.compile(r"node_([0-9a-f]{56})")
OBJECT_STORE = str(100 * 2**20)  # bytes a node: the chunks in flight are small
TOKEN_OUTPUTS = ("data/classifier/tokens", "data/classifier/vocab.json", "reports/classifier/tokens.json")


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    """`ray start ... --block`: the node's processes stay in this process's group, stopped with it."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [RAY, "start", "--block", "--num-cpus=1", f"--object-store-memory={OBJECT_STORE}", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(nodes: list[subprocess.Popen]) -> None:
    """SIGTERM to each node's process group, then SIGKILL to whatever of the groups is left."""
    for proc in nodes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in nodes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _alive_nodes(address: str, env: dict) -> set[str]:
    status = subprocess.run([RAY, "status", f"--address={address}"], env=env, capture_output=True, text=True)
    active = status.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
    return set(NODE.findall(active))


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node; yields (address, the two node ids)."""
    # Ray's sockets live under its temp dir and a Unix socket path holds at most 107 bytes: pytest's temp dir
    # under a test worker (make test runs two, .../popen-gw0/...) left Ray's session path too long
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    address = f"127.0.0.1:{free_port()}"
    env = venv_env(OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    log = temp / "nodes.log"
    head = _start(
        ["--head", f"--port={address.split(':')[1]}", "--include-dashboard=false", f"--temp-dir={temp}"], log, env
    )
    nodes: list[subprocess.Popen] = [head]
    try:
        deadline = time.monotonic() + 90
        while len(nodes) < 2 or len(_alive_nodes(address, env)) < 2:
            for proc in nodes:
                if proc.poll() is not None:
                    pytest.fail(f"a Ray node exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the two-node cluster did not come up in 90 s:\n{log.read_text(errors='replace')[-3000:]}")
            if len(nodes) < 2 and _alive_nodes(address, env):  # the head is up: the worker joins it
                nodes.append(_start([f"--address={address}"], log, env))
            time.sleep(1)
        yield address, _alive_nodes(address, env)
    finally:
        _stop(nodes[::-1])
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A tiny trained and registered champion; its tokens and local.* predictions written by the local engine."""
    work = trained(tmp_path_factory, "ray-work", run_tiny_pipeline)
    texts = ["a wonderful film", "an awful, boring film", "great fun", "tedious and dull"] * 60
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts, "label": "?"})
    frame.to_parquet(work / "in.parquet", index=False)
    frame.to_json(work / "in.jsonl", orient="records", lines=True)
    for name in ("parquet", "jsonl"):  # the local engine's outputs, to compare with
        _run(work, "local", 25, SENTIPIPE, "predict", "--input", f"in.{name}", "--output", f"local.{name}")
    return work


def _run(
    work: Path, engine: str, chunk_rows: int, *command: str, address: str | None = None, extra: dict | None = None
) -> str:
    """A command in the workspace with compute.engine set (and `extra` params); returns what it printed."""
    write_params(work, tiny_raw({"compute": {"engine": engine, "chunk_rows": chunk_rows}, **(extra or {})}))
    env = venv_env(OMP_NUM_THREADS="1", MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}")
    env.pop("RAY_ADDRESS", None)
    if address:
        env["RAY_ADDRESS"] = address
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _ran_on(printed: str, nodes: set[str]) -> set[str]:
    """The cluster's nodes that the command says computed its chunks (it prints 8-character id prefixes)."""
    found = re.search(r"on Ray over (\d+) node\(s\) \(([^)]*)\)", printed)
    assert found, printed
    prefixes = {part.split()[0] for part in found.group(2).split(", ")}
    return {node for node in nodes if node[:8] in prefixes}


def _snapshot(work: Path, outputs: tuple[str, ...] = TOKEN_OUTPUTS) -> dict[str, bytes]:
    files = {}
    for name in outputs:
        path = work / name
        for f in sorted(path.rglob("*") if path.is_dir() else [path]):
            if f.is_file():
                files[str(f.relative_to(work))] = f.read_bytes()
    return files


def test_batch_prediction_on_two_nodes_writes_the_local_bytes(cluster, work):
    address, nodes = cluster
    for name in ("parquet", "jsonl"):
        command = (SENTIPIPE, "predict", "--input", f"in.{name}", "--output", f"ray.{name}")
        printed = _run(work, "ray", 25, *command, address=address)
        assert "wrote 240 predictions" in printed
        assert (work / f"ray.{name}").read_bytes() == (work / f"local.{name}").read_bytes(), name
        assert _ran_on(printed, nodes) == nodes, printed
    scored = pd.read_parquet(work / "ray.parquet")
    assert scored["id"].tolist() == [f"r{i}" for i in range(240)]
    assert scored["label"].tolist()[:2] == ["positive", "negative"] and "input_label" in scored.columns


def test_monitored_batch_prediction_on_two_nodes_logs_every_row_it_wrote(cluster, work):
    """With monitoring.enabled the workers score and the command logs: each output row's log_id is a logged row."""
    address, nodes = cluster
    command = (SENTIPIPE, "predict", "--input", "in.parquet", "--output", "logged.parquet")
    monitoring = {"monitoring": {"enabled": True, "log": "logs/predictions"}}
    printed = _run(work, "ray", 25, *command, address=address, extra=monitoring)
    assert "logged 240 rows" in printed and _ran_on(printed, nodes) == nodes, printed
    out, log = pd.read_parquet(work / "logged.parquet"), pd.read_parquet(work / "logs/predictions")
    local = pd.read_parquet(work / "local.parquet")
    pd.testing.assert_frame_equal(out.drop(columns="log_id"), local)
    logged = log.set_index("id").loc[out["log_id"]]
    assert logged["text"].tolist() == out["text"].tolist() and logged["label"].tolist() == out["label"].tolist()


def test_tokenize_on_two_nodes_writes_the_local_bytes(cluster, work):
    """The pipeline's own tokenize (local engine, one chunk a split) against Ray over chunks of five rows."""
    address, nodes = cluster
    local = _snapshot(work)
    assert any(name.endswith("ids.npy") for name in local)
    stage = str(REPO / "pipeline/classifier/tokenize_texts.py")
    printed = _run(work, "ray", 5, sys.executable, stage, address=address)
    assert _snapshot(work) == local
    assert _ran_on(printed, nodes) == nodes, printed


def test_teacher_labelling_on_two_nodes_writes_the_local_bytes(cluster, work, tmp_path):
    """A tiny local checkpoint fine-tuned as the teacher; its soft targets labelled here, then on the cluster."""
    address, nodes = cluster
    folder = tiny_checkpoint(tmp_path / "encoder")
    teacher = (sys.executable, str(REPO / "pipeline/classifier/teacher.py"))
    outputs = ("data/classifier/teacher",)
    _run(work, "local", 20, *teacher, extra=distill(str(folder)))
    local = _snapshot(work, outputs)
    assert sorted(local) == ["data/classifier/teacher/soft_targets.parquet", "data/classifier/teacher/test_logits.npy"]
    printed = _run(work, "ray", 20, *teacher, address=address, extra=distill(str(folder)))
    assert _snapshot(work, outputs) == local
    assert _ran_on(printed, nodes) == nodes, printed
