"""Fixtures the serving tests share: one tiny champion trained, registered and served for the whole package.

test_serve.py and test_serve_malformed.py talk to the same real server, so the
model is trained once (a module-scoped fixture would train it again per module).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_tiny_pipeline, tiny_raw, write_params, write_raw_corpus
from tests.servers import free_port, stop, wait_until_up

BODY_TIMEOUT = 3  # seconds: the shared server refuses a stalled body this soon (default 10): a short test


def start_serve(work: Path, *args: str, params: Path | None = None, log_name: str = "serve.log", **env: str):
    """The `sentipipe` entry point, run as a service manager would (no venv on PATH), serving on a free port.

    Returns (process, URL, its output file) once /ping answers. `params`: a params file other than the
    workspace's; `env` adds variables to its environment.
    """
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}, **env}
    env["PATH"] = "/usr/bin:/bin"  # a bare PATH: no uvicorn, no venv
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    log = work / log_name
    options = ["--params", str(params)] if params else []
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "sentipipe"), *options, "serve", "--port", str(port), *args],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/ping", "sentipipe serve", log, timeout=120)
    except BaseException:
        stop(proc)
        raise
    return proc, url, log


def serve(work: Path, *args: str, log_name: str = "serve.log", **env: str):
    """`start_serve` as a fixture's generator: yields the URL, stops the server after."""
    proc, url, _ = start_serve(work, *args, log_name=log_name, **env)
    try:
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


@pytest.fixture(scope="package")
def classifier_work(tmp_path_factory) -> Path:
    work = trained(tmp_path_factory, "serve", run_tiny_pipeline)
    write_params(work, tiny_raw())
    return work


@pytest.fixture(scope="package")
def server(classifier_work):
    """One real server for the package: trained, registered and started once; its log is `server_log`."""
    yield from serve(classifier_work, log_name="server.log", SENTIPIPE_SERVE_BODY_TIMEOUT=str(BODY_TIMEOUT))


@pytest.fixture(scope="package")
def server_log(classifier_work) -> Path:
    return classifier_work / "server.log"
