"""`dvc repro` for real, on tiny params, in a temporary copy of the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.e2e

TINY_PARAMS = {
    "data": {"max_rows": 400},
    "embed": {"source": "minilm", "mode": "pieces", "dim": 384},
    "train": {"epochs": 2, "hidden_size": 32, "batch_size": 32, "freeze_embeddings": False},
    "register": {"model_name": "e2e-sentiment"},
    "generator": {
        "train": {"epochs": 2, "embed_dim": 16, "hidden_size": 48, "batch_size": 8, "bptt": 32},
        "sample": {"max_length": 60},
        "evaluate": {"ngram_max_order": 4, "prompts": ["The movie"]},
        "register": {"model_name": "e2e-generator"},
    },
}


def merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def copy_repo(dest: Path) -> None:
    """The files git would check out (tracked and untracked-not-ignored), as a fresh repo."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    merge(params, TINY_PARAMS)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "e2e"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "e2e@example.invalid"
    first = run(["dvc", "repro"], repo, env)
    return repo, env, first


def test_repro_ends_with_a_champion_that_answers_raw_text(repro):
    repo, env, _ = repro
    assert (repo / "mlflow.db").is_file(), "the default store is SQLite at the repository root"
    out = run(["sentipipe", "predict", "a wonderful, moving film", ""], repo, env).stdout.splitlines()
    assert len(out) == 2 and out[0].split("\t")[0] in {"positive", "negative"}
    assert "positive=" in out[0] and "negative=" in out[0]
    summary = run(["sentipipe", "summary"], repo, env).stdout
    assert "registered model: e2e-sentiment version 1" in summary and "test accuracy" in summary
    assert "registered generator: e2e-generator version 1" in summary and "bits per character" in summary


def test_repro_also_registers_a_generator_that_samples_reproducibly(repro):
    import json

    repo, env, _ = repro
    metrics = json.loads((repo / "reports/lm_metrics.json").read_text())
    assert metrics["val"]["bpc"] > 0 and metrics["baseline"]["kneser_ney_order"] in range(1, 5)
    args = ["sentipipe", "generate", "The movie", "Qzx\u00e9 \U0001f600", "--seed", "7", "--max-length", "40"]
    first = run(args, repo, env).stdout
    assert first == run(args, repo, env).stdout, "the same seed must give the same text"
    lines = first.splitlines()
    assert lines[0].startswith("The movie") and "not in the vocabulary" in first


def test_second_repro_is_a_no_op(repro):
    repo, env, _ = repro
    again = run(["dvc", "repro"], repo, env)
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout


def test_metrics_are_visible_to_dvc(repro):
    repo, env, _ = repro
    shown = run(["dvc", "metrics", "show", "--json"], repo, env).stdout
    assert "accuracy" in shown and "best_val_accuracy" in shown


def test_the_run_carries_lineage_from_git_and_dvc_lock(repro):
    import json

    from mlflow import MlflowClient

    repo, env, _ = repro
    run_id = json.loads((repo / "reports/train.json").read_text())["run_id"]
    tags = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}").get_run(run_id).data.tags
    head = run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()
    assert tags["git.commit"] == head
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["tokenize"]["outs"]
    assert tags["dvc.lock.data/tokens"] == next(o["md5"] for o in lock if o["path"] == "data/tokens")


def test_queued_experiments_land_in_the_workspace_store_with_their_names(repro):
    import time

    from mlflow import MlflowClient

    repo, env, _ = repro
    run(["dvc", "exp", "run", "--queue", "-S", "train.cell=gru", "-S", "train.bidirectional=true,false"], repo, env)
    run(["dvc", "queue", "start", "-j", "2"], repo, env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sentipipe")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "dvc.exp_name" in r.data.tags]
    assert sorted(r.data.params["train.bidirectional"] for r in runs) == ["False", "True"]
    assert {r.data.params["train.cell"] for r in runs} == {"gru"} and all(r.info.status == "FINISHED" for r in runs)
    shown = run(["dvc", "exp", "show", "--json"], repo, env).stdout
    assert all(r.data.tags["dvc.exp_name"] in shown for r in runs)
