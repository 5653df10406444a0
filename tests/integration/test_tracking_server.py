"""A real tracking server: `mlflow server` on PostgreSQL, artifacts proxied to a folder.

With MLFLOW_TRACKING_URI=http://... the tiny pipeline runs end to end, registration included, with
no code change; the run, its metrics, the model version and its `champion` alias are then read
back through the server and straight from PostgreSQL, and the champion loads and predicts.

PostgreSQL comes from SENTIPIPE_TEST_POSTGRES_URI (default: the role and database `.ci/services.sh`
creates); that role must be allowed to create databases: each run gets a fresh one, dropped after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.helpers import assert_one_champion_after_a_race, run_tiny_pipeline, write_raw_corpus
from tests.servers import free_port, stop, wait_until_up

pytestmark = pytest.mark.integration

DEFAULT_URI = "postgresql://sentipipe:sentipipe@127.0.0.1:5432/sentipipe"
SETUP_HINT = (
    "run `make test` or `bash .ci/services.sh` (installs postgresql from Debian, starts it, creates the role), "
    "or set SENTIPIPE_TEST_POSTGRES_URI=postgresql://USER:PASSWORD@HOST:PORT/DB for a role with CREATEDB"
)
TIMEOUT = 120  # seconds for the server to migrate a fresh database and answer /health


def with_database(uri: str, name: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def database():
    """A fresh PostgreSQL database for this run; dropped afterwards."""
    import psycopg

    admin_uri = os.environ.get("SENTIPIPE_TEST_POSTGRES_URI") or DEFAULT_URI
    try:
        admin = psycopg.connect(admin_uri, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as e:
        shown = urlunsplit(urlsplit(admin_uri)._replace(netloc=urlsplit(admin_uri).netloc.split("@")[-1]))
        pytest.fail(f"PostgreSQL at {shown} is not reachable ({str(e).strip()}): {SETUP_HINT}", pytrace=False)
    name = f"sentipipe_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield with_database(admin_uri, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    """`mlflow server` on the database, artifacts served from a temp folder; yields (url, folder)."""
    work = tmp_path_factory.mktemp("tracking-server")
    artifacts = work / "artifacts"
    port = free_port()
    command = [
        *(str(Path(sys.executable).parent / "mlflow"), "server"),
        *("--backend-store-uri", database),
        *("--artifacts-destination", str(artifacts)),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = work / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        yield proc, url, artifacts, log
    finally:
        # 3 s: uvicorn's graceful shutdown would wait for this process's idle keep-alive connections
        stop(proc, grace=3)


@pytest.fixture(scope="module")
def pipeline_on_server(server, tmp_path_factory):
    """The tiny pipeline, prepare to register, with only MLFLOW_TRACKING_URI pointing at the server."""
    from sentipipe.tasks.classifier.paths import REGISTRATION

    proc, url, artifacts, log = server
    work = tmp_path_factory.mktemp("work")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", url)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        write_raw_corpus(work)
        # The data stages do not talk to MLflow: they run while the server migrates its database.
        run_tiny_pipeline(only=("prepare", "tokenize", "embed"))
        wait_until_up(proc, f"{url}/health", "mlflow server", log, TIMEOUT)
        params = run_tiny_pipeline(only=("train", "evaluate", "register"))
        registration = json.loads(REGISTRATION.read_text())
    assert not (work / "mlflow.db").exists() and not (work / "mlartifacts").exists()
    return {"url": url, "artifacts": artifacts, "params": params, "registration": registration}


def test_run_metrics_and_champion_are_on_the_server(pipeline_on_server):
    from mlflow import MlflowClient

    url, params = pipeline_on_server["url"], pipeline_on_server["params"]
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    experiment = client.get_experiment_by_name(params.classifier.experiment)
    assert experiment is not None and experiment.artifact_location.startswith("mlflow-artifacts:")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert {"val_accuracy", "test_accuracy", "val_log_loss", "best_val_loss"} <= set(run.data.metrics)
    assert run.data.metrics["test_accuracy"] >= 0.9
    train = params.classifier.train
    assert len(client.get_metric_history(run.info.run_id, "curve_train_loss")) == train.max_steps // train.eval_every

    name = params.classifier.register.model_name
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == "1" and champion.run_id == run.info.run_id
    assert float(champion.tags["val_accuracy"]) == run.data.metrics["val_accuracy"]
    assert pipeline_on_server["registration"]["champion_version"] == 1

    # The artifacts went through the server into its artifact folder.
    stored = {p.name for p in pipeline_on_server["artifacts"].rglob("*") if p.is_file()}
    assert {"MLmodel", "metrics.json"} <= stored


def test_the_store_is_postgresql(pipeline_on_server, database):
    import psycopg

    name = pipeline_on_server["params"].classifier.register.model_name
    with psycopg.connect(database) as db:
        aliases = db.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s", (name,))
        assert aliases.fetchall() == [("champion", 1)]
        metrics = db.execute("SELECT count(*) FROM latest_metrics WHERE key = 'val_accuracy'")
        assert metrics.fetchone() == (1,)


def test_the_champion_loads_from_the_server_and_predicts(pipeline_on_server, monkeypatch):
    import mlflow.pyfunc
    import pandas as pd

    monkeypatch.setenv("MLFLOW_TRACKING_URI", pipeline_on_server["url"])
    name = pipeline_on_server["params"].classifier.register.model_name
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    texts = pd.DataFrame({"text": ["a brilliant and wonderful film", "a boring, awful film"]})
    out = pd.DataFrame(model.predict(texts))
    assert list(out["label"]) == ["positive", "negative"]


def test_racing_registrations_through_the_server_end_with_one_champion(pipeline_on_server):
    """No file lock can reach a server store: the lease on the registered model serialises the decisions."""
    url, registration = pipeline_on_server["url"], pipeline_on_server["registration"]
    assert_one_champion_after_a_race(url, f"runs:/{registration['run_id']}/model")
