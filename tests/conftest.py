"""Shared fixtures: an isolated MLflow store and workspace per test; helpers live in tests/helpers.py."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.helpers import write_raw_corpus
from tests.servers import free_port, stop


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A real SQLite tracking store in a temp dir, selected the way users do: MLFLOW_TRACKING_URI."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    yield uri
    if mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run a stage in an empty workspace (stage paths are relative to the cwd)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch):
    monkeypatch.setenv("GIT_PYTHON_REFRESH", "quiet")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def tiny_workspace(workdir, mlflow_store):
    """A workspace whose ingest output is the tiny corpus; MLflow in a temp SQLite store."""
    write_raw_corpus(workdir)
    return workdir


@pytest.fixture(autouse=True, scope="session")
def _own_cache(tmp_path_factory):
    """Downloads (the default corpus, registered models) go to this session's cache, not the user's."""
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("SENTIPIPE_CACHE")
    os.environ["SENTIPIPE_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("SENTIPIPE_CACHE", None)
    else:
        os.environ["SENTIPIPE_CACHE"] = previous


# ---------------------------------------------------------------- a tracking server on PostgreSQL, for the session

DEFAULT_URI = "postgresql://sentipipe:sentipipe@127.0.0.1:5432/sentipipe"
SETUP_HINT = (
    "run `make test` or `bash .ci/services.sh` (installs postgresql from Debian, starts it, creates the role), "
    "or set SENTIPIPE_TEST_POSTGRES_URI=postgresql://USER:PASSWORD@HOST:PORT/DB for a role with CREATEDB"
)
TIMEOUT = 120  # seconds for the server to migrate a fresh database and answer /health


def with_database(uri: str, name: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def postgres_database():
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


@pytest.fixture(scope="session")
def tracking_server(postgres_database, tmp_path_factory):
    """`mlflow server` on the database, artifacts served from a temp folder; yields (url, folder)."""
    work = tmp_path_factory.mktemp("tracking-server")
    artifacts = work / "artifacts"
    port = free_port()
    command = [
        *(str(Path(sys.executable).parent / "mlflow"), "server"),
        *("--backend-store-uri", postgres_database),
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
