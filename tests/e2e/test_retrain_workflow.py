"""The retraining workflow, replayed here: every `run:` step of .github/workflows/retrain.yml, in order.

The steps are read from the workflow file, so the test follows it. They run in a fresh clone (whose
`origin` is a bare git repository here, and whose DVC remote is a local folder), on the CPU, with
tiny params given the way the workflow takes them (the `overrides` input), against the suite's
tracking server on PostgreSQL (the repository secret MLFLOW_TRACKING_URI). GitHub's own steps
(`uses:`) are not run; `${{ ... }}` expressions are given the values a dispatch would have.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.helpers import REPO, copy_repo, venv_env
from tests.servers import wait_until_up

pytestmark = pytest.mark.e2e

WORKFLOW = REPO / ".github/workflows/retrain.yml"
TINY = [
    "data.max_rows=400",
    "classifier.embed.source=random",
    "classifier.embed.dim=16",
    "classifier.train.max_steps=20",
    "classifier.train.eval_every=10",
    "classifier.train.hidden_size=16",
    "classifier.distill.teacher_epochs=1",  # the workflow trains the documented distillation set: a small one here
    "classifier.distill.teacher_max_length=32",
    "classifier.distill.variants=2",
    "classifier.register.model_name=replay-classifier",
    "classifier.register.beat_baseline=false",
    "generator.train.max_steps=30",
    "generator.train.eval_every=15",
    "generator.train.hidden_size=32",
    "generator.train.batch_size=8",
    "generator.train.bptt=32",
    "generator.sample.max_length=40",
    "generator.register.model_name=replay-generator",
    "generator.register.beat_baseline=false",
]


def steps() -> list[tuple[str, dict, str]]:
    """(name, env, script) of every `run:` step of the retrain job, in order."""
    job = next(iter(yaml.safe_load(WORKFLOW.read_text())["jobs"].values()))
    return [(s.get("name", s["run"][:40]), s.get("env", {}), s["run"]) for s in job["steps"] if "run" in s]


def expand(text: str, values: dict[str, str]) -> str:
    """`${{ expression }}` as a run of the workflow would see it."""
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: values[m.group(1)], text)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def clone(tmp: Path) -> tuple[Path, Path]:
    """A fresh checkout whose `origin` is a bare repository with a `main` branch, and a DVC remote folder."""
    source = tmp / "source"
    copy_repo(source)
    git(source, "branch", "-M", "main")
    # The team's DVC remote is part of the repository, as in a real one: every clone and experiment has it.
    subprocess.run(
        ["dvc", "remote", "add", "-d", "local", str(tmp / "dvc-remote")], cwd=source, check=True, env=venv_env()
    )
    git(source, "add", ".dvc/config")
    git(source, "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-qm", "a DVC remote")
    origin = tmp / "origin.git"
    git(tmp, "clone", "--bare", "-q", str(source), str(origin))
    work = tmp / "work"
    git(tmp, "clone", "-q", str(origin), str(work))
    # The suite's environment as the clone's .venv, installed already: `make setup` finds it current
    # (a checkout's fresh timestamps would otherwise make it reinstall, into the suite's own environment).
    (work / ".venv").symlink_to(Path(sys.executable).parents[1])
    os.utime(work / "pyproject.toml", (0, 0))
    return work, origin


def replay(work: Path, env: dict, values: dict[str, str]) -> list[subprocess.CompletedProcess]:
    done = []
    for name, step_env, script in steps():
        full = {**env, **{k: expand(str(v), values) for k, v in step_env.items()}}
        proc = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", expand(script, values)],
            cwd=work,
            env=full,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        done.append(proc)
        if proc.returncode != 0:
            proc.step = name
            break
    return done


@pytest.fixture(scope="module")
def replayed(tracking_server, tmp_path_factory):
    proc, url, _, log = tracking_server
    wait_until_up(proc, f"{url}/health", "mlflow server", log, 120)
    tmp = tmp_path_factory.mktemp("retrain")
    work, origin = clone(tmp)
    summary = tmp / "step-summary.md"
    env = {k: v for k, v in venv_env().items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(
        MLFLOW_TRACKING_URI=url,
        GITHUB_STEP_SUMMARY=str(summary),
        PYTHONPATH=str(work / "src"),
        GIT_AUTHOR_NAME="ci",
        GIT_COMMITTER_NAME="ci",
        GIT_AUTHOR_EMAIL="ci@example.invalid",
        GIT_COMMITTER_EMAIL="ci@example.invalid",
    )
    # Champions trained earlier (on a GPU, say): the CPU retrain below must not displace them.
    first = ["dvc", "exp", "run", "dvc.yaml", "pipeline/generator/dvc.yaml", *(f"-S{x}" for x in TINY)]
    subprocess.run(first, cwd=work, env=env, check=True, capture_output=True, text=True, timeout=1200)
    subprocess.run(["git", "checkout", "--", "."], cwd=work, check=True)
    client = MlflowClient(url, registry_uri=url)
    before = {
        m: client.get_model_version_by_alias(m, "champion").version for m in ("replay-classifier", "replay-generator")
    }
    values = {
        "github.event.inputs.overrides": " ".join(f"-S {x}" for x in [*TINY, "classifier.train.lr=0.005"]),
        "github.event.inputs.reason": "monitor: window 3: DRIFT: length",
        "github.run_id": "4242",
    }
    done = replay(work, env, values)
    return {
        "work": work,
        "origin": origin,
        "done": done,
        "summary": summary,
        "client": client,
        "before": before,
        "url": url,
    }


def test_every_run_step_of_the_workflow_succeeds(replayed):
    failed = [p for p in replayed["done"] if p.returncode != 0]
    assert not failed, f"step {failed[0].step!r} failed:\n{failed[0].stdout[-3000:]}\n{failed[0].stderr[-3000:]}"
    assert len(replayed["done"]) == len(steps())


def test_the_report_names_what_changed_and_both_registrations(replayed):
    report = (replayed["work"] / "report.md").read_text()
    assert "classifier.train.lr" in report and "0.005" in report, "the params diff against main"
    assert "reports/classifier/metrics.json" in report, "the metrics diff against main"
    assert "Dispatched on evidence: monitor: window 3: DRIFT: length" in report, "monitor.yml's reason"
    for model in ("replay-classifier", "replay-generator"):
        assert f'"name": "{model}"' in report
    assert replayed["summary"].read_text() == report, "the same report on the job's summary page"


def test_cpu_trained_versions_become_challengers_and_the_champions_stay(replayed):
    client = replayed["client"]
    for model, report in (("replay-classifier", "classifier"), ("replay-generator", "generator")):
        registration = json.loads((replayed["work"] / f"reports/{report}/registration.json").read_text())
        assert registration["decision"] == "challenger" and not registration["promoted"]
        assert client.get_model_version_by_alias(model, "champion").version == replayed["before"][model]
        version = client.get_model_version(model, str(registration["version"]))
        assert "challenger" in version.aliases
        assert "register.require_gpu is true" in version.tags["registration.reasons"]
        assert version.tags["dvc.exp_name"] == "retrain-4242"


def test_the_experiment_can_be_found_again_from_git_and_its_files_from_the_remote(replayed, tmp_path):
    """A version's tags name the experiment; a fresh clone pulls it (git refs and DVC files) and gets the model."""
    env = venv_env()
    again = tmp_path / "again"
    git(tmp_path, "clone", "-q", str(replayed["origin"]), str(again))
    subprocess.run(
        ["dvc", "exp", "pull", "origin", "retrain-4242"], cwd=again, check=True, env=env, capture_output=True
    )
    subprocess.run(["dvc", "exp", "apply", "retrain-4242"], cwd=again, check=True, env=env, capture_output=True)
    subprocess.run(["dvc", "checkout"], cwd=again, check=True, env=env, capture_output=True)
    for path in ("models/classifier/served.pt", "models/generator/model.pt"):
        assert (again / path).read_bytes() == (replayed["work"] / path).read_bytes(), path


def test_an_unreachable_tracking_server_fails_the_job_at_once_and_registers_nothing(replayed, tmp_path):
    client = replayed["client"]
    versions = {m: len(client.search_model_versions(f"name='{m}'")) for m in ("replay-classifier", "replay-generator")}
    env = {**venv_env(), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}
    done = replay(
        replayed["work"],
        env,
        {"github.event.inputs.overrides": "", "github.event.inputs.reason": "", "github.run_id": "4343"},
    )
    failed = done[-1]
    assert failed.returncode != 0 and failed.step.startswith("check the tracking server")
    assert "the tracking server at http://127.0.0.1:9 does not answer" in failed.stderr
    assert "nothing was trained" in failed.stderr
    assert {m: len(client.search_model_versions(f"name='{m}'")) for m in versions} == versions
