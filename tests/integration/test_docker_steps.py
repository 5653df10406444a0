"""The Dockerfile's install steps, replayed outside Docker (no engine here) in a clean virtual environment.

The steps are read from the Dockerfile itself: its ENV, the `python3 -m venv` it creates, its WORKDIR,
the COPYs before `pip install`, and that install command, run as written. The image's entry point
then reaches `sentipipe` and `dvc` from that environment, and the package is the installed one, not
the checkout. Takes a minute or two: a real install (torch from the local wheel when pip has one).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.integration

DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return out


def env_pairs(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if "=" not in words[0]:  # legacy `ENV KEY value`
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def install_steps() -> dict:
    """What the image does up to and including `pip install`, in image paths."""
    steps = {"env": {}, "venv": None, "workdir": "/", "copies": [], "install": None}
    for keyword, args in instructions():
        if keyword == "ENV":
            steps["env"].update(env_pairs(args))
        elif keyword == "RUN" and steps["venv"] is None and (m := re.search(r"python3 -m venv (\S+)", args)):
            steps["venv"] = m.group(1)
        elif keyword == "WORKDIR":
            steps["workdir"] = args
        elif keyword == "COPY":
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            steps["copies"].append((words[:-1], words[-1]))
        elif keyword == "RUN" and re.search(r"\bpip install\b", args):
            steps["install"] = args
            return steps
    pytest.fail("the Dockerfile has no `RUN pip install`")


def test_the_dockerfile_has_the_steps_this_test_replays():
    steps = install_steps()
    assert steps["venv"] == steps["env"]["VIRTUAL_ENV"] == "/opt/venv"
    assert steps["env"]["PATH"].startswith("/opt/venv/bin:")
    assert steps["workdir"] == "/app"
    assert steps["copies"] == [(["pyproject.toml", "README.md"], "./"), (["src"], "./src")]
    assert steps["install"] == "pip install ."


def test_the_build_context_leaves_out_local_state_and_keeps_what_the_image_needs():
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", "mlflow.db", "mlartifacts", "data", "models", "test-artifacts"} <= ignored
    needed = {src for sources, _ in install_steps()["copies"] for src in sources} | {"docker"}
    assert not needed & ignored
    assert os.access(ENTRYPOINT, os.X_OK)


@pytest.fixture(scope="module")
def image_env(tmp_path_factory):
    """A clean venv with the project installed exactly as the Dockerfile does; the env to run it in."""
    steps = install_steps()
    root = tmp_path_factory.mktemp("image")
    inside = lambda image_path: root / image_path.lstrip("/")  # noqa: E731 - image path -> here
    venv, workdir = inside(steps["venv"]), inside(steps["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)

    # A clean environment: none of this test's virtualenv, PYTHONPATH or PIP_ settings beyond the machine's.
    own_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and p != own_bin)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env["PATH"] = path
    python3 = shutil.which("python3", path=path)
    assert python3, "no python3 on PATH outside the project's virtualenv"
    subprocess.run([python3, "-m", "venv", str(venv)], check=True, env=env, timeout=120)

    for key, value in steps["env"].items():
        env[key] = value.replace("$PATH", path).replace(steps["venv"], str(venv))
    for sources, dest in steps["copies"]:
        target = workdir / dest
        for source in sources:
            origin = REPO / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / source)
    out = subprocess.run(
        ["/bin/sh", "-c", steps["install"]], cwd=workdir, env=env, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, f"`{steps['install']}` failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return {"env": env, "venv": venv, "workdir": workdir}


def run(image_env, *command: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    cwd = cwd or image_env["workdir"]
    return subprocess.run(list(command), cwd=cwd, env=image_env["env"], capture_output=True, text=True, timeout=120)


def test_pip_install_gives_a_consistent_environment_with_the_pinned_torch(image_env):
    out = run(image_env, "pip", "check")
    assert out.returncode == 0, out.stdout + out.stderr
    out = run(image_env, "python", "-c", "import torch, mlflow, dvc.api, spacy; print(torch.__version__)")
    assert out.returncode == 0, out.stderr
    torch_pin = re.search(r'"torch==([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert out.stdout.strip().split("+")[0] == torch_pin


def test_the_installed_package_is_used_not_the_checkout(image_env, tmp_path):
    out = run(image_env, "python", "-c", "import sentipipe; print(sentipipe.__file__)", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    installed = Path(out.stdout.strip())
    assert installed.is_relative_to(image_env["venv"]) and "site-packages" in installed.parts


def test_the_entrypoint_reaches_sentipipe_and_dvc(image_env):
    venv_bin = image_env["venv"] / "bin"
    out = run(image_env, "sh", "-c", "for tool in sentipipe dvc mlflow; do command -v $tool; done")
    assert out.stdout.split() == [str(venv_bin / name) for name in ("sentipipe", "dvc", "mlflow")]

    out = run(image_env, str(ENTRYPOINT), "sentipipe", "--help")
    assert out.returncode == 0 and "serve" in out.stdout and "predict" in out.stdout, out.stderr
    out = run(image_env, str(ENTRYPOINT), "serve", "--help")
    assert out.returncode == 0 and "--port" in out.stdout, out.stderr
    out = run(image_env, str(ENTRYPOINT), "train", "--help")
    assert out.returncode == 0 and "usage: dvc repro" in out.stdout, out.stderr
    out = run(image_env, str(ENTRYPOINT), "dvc", "--version")
    assert out.returncode == 0 and re.match(r"3\.\d+", out.stdout.strip()), out.stdout + out.stderr
