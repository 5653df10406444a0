"""The image's entry point, run outside Docker (no engine here): each command reaches the right tool."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.integration
ENTRYPOINT = str(REPO / "docker" / "entrypoint.sh")
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_train_is_dvc_repro():
    out = subprocess.run([ENTRYPOINT, "train", "--help"], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.returncode == 0 and "usage: dvc repro" in out.stdout


def test_other_commands_run_as_given():
    out = subprocess.run([ENTRYPOINT, "sentipipe", "--help"], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.returncode == 0 and "predict" in out.stdout and "serve" in out.stdout
