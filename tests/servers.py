"""Helpers for tests that start a real server process: a free port, wait until it answers, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(proc: subprocess.Popen, url: str, name: str, log: Path, timeout: float) -> None:
    """Poll `url` until it answers 200; fail with the end of `log` if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or listening before its app answers (a busy host): ask again until the deadline
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not answer {url} within {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM to the process group (workers too); SIGKILL after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
