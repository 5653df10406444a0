"""Shared fixtures: an isolated MLflow store and workspace per test; helpers live in tests/helpers.py."""

from __future__ import annotations

import os

import pytest

from tests.helpers import write_raw_corpus


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
