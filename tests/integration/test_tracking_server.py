"""A real tracking server: `mlflow server` on PostgreSQL, artifacts proxied to a folder.

With MLFLOW_TRACKING_URI=http://... the tiny pipeline runs end to end, registration included, with
no code change; the run, its metrics, the model version and its `champion` alias are then read
back through the server and straight from PostgreSQL, and the champion loads and predicts.

PostgreSQL comes from SENTIPIPE_TEST_POSTGRES_URI (default: the role and database `.ci/services.sh`
creates); that role must be allowed to create databases: each run gets a fresh one, dropped after.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import assert_one_champion_after_a_race, run_tiny_pipeline, write_raw_corpus
from tests.servers import wait_until_up

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline_on_server(tracking_server, tmp_path_factory):
    """The tiny pipeline, prepare to register, with only MLFLOW_TRACKING_URI pointing at the server."""
    from sentipipe.tasks.classifier.paths import REGISTRATION

    proc, url, artifacts, log = tracking_server
    work = tmp_path_factory.mktemp("work")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", url)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        write_raw_corpus(work)
        # The data stages do not talk to MLflow: they run while the server migrates its database.
        run_tiny_pipeline(only=("prepare", "tokenize", "embed", "teacher"))
        wait_until_up(proc, f"{url}/health", "mlflow server", log, 120)
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


def test_the_store_is_postgresql(pipeline_on_server, postgres_database):
    import psycopg

    name = pipeline_on_server["params"].classifier.register.model_name
    with psycopg.connect(postgres_database) as db:
        aliases = db.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s", (name,))
        assert aliases.fetchall() == [("champion", 1)]
        # This run's metric row (the session's server also holds the e2e tests' runs).
        run_id = pipeline_on_server["registration"]["run_id"]
        metrics = db.execute(
            "SELECT value FROM latest_metrics WHERE key = 'val_accuracy' AND run_uuid = %s", (run_id,)
        ).fetchall()
        assert len(metrics) == 1 and 0.5 <= metrics[0][0] <= 1.0


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


def test_the_lease_admits_one_holder_at_a_time_when_writers_collide(pipeline_on_server, monkeypatch):
    """Four writers find the lease free at the same instant: their inserts of the tag row collide in PostgreSQL.

    The losers of that insert get a unique-constraint error from the server; each must back off and retry,
    not fail its registration, and the critical sections must never overlap.
    """
    import threading

    from mlflow import MlflowClient

    from sentipipe import registry

    monkeypatch.setattr(registry, "SETTLE_SECONDS", 0.3)
    url = pipeline_on_server["url"]
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    client.create_registered_model("leased")
    barrier, spans, errors = threading.Barrier(4), [], []

    def contend():
        try:
            barrier.wait()
            with registry._lease(MlflowClient(tracking_uri=url, registry_uri=url), "leased", timeout=60):
                start = time.monotonic()
                time.sleep(0.2)
                spans.append((start, time.monotonic()))
        except Exception as error:  # noqa: BLE001 - the test reports any failure of a contender
            errors.append(repr(error))

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and len(spans) == 4
    spans.sort()
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:])), spans
    assert registry.LEASE_TAG not in client.get_registered_model("leased").tags
