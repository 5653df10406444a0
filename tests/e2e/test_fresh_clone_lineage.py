"""A fresh clone's `dvc repro` registers `git.dirty: false`; after an edit to a source file, `true`.

The run rewrites tracked files (reports/**, dvc.lock) before train opens its MLflow run: those are the
pipeline's outputs and must not count. Tiny params are committed first, so the clone starts clean.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.helpers import copy_repo, merge, venv_env

pytestmark = pytest.mark.e2e

TINY = {
    "data": {"max_rows": 300},
    "classifier": {
        "embed": {"source": "random", "dim": 16},
        "train": {"max_steps": 20, "eval_every": 10, "hidden_size": 16, "batch_size": 32},
        "register": {"model_name": "clone-classifier", "beat_baseline": False},
    },
}
EDITED = "src/sentipipe/tasks/classifier/objective.py"  # a dep of train only: the repro after it is short


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_a_fresh_clones_repro_is_clean_and_an_edited_source_file_is_not(tmp_path):
    repo = tmp_path / "clone"
    repo.mkdir()
    copy_repo(repo)
    env = {k: v for k, v in venv_env().items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "e2e"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "e2e@example.invalid"
    params = merge(yaml.safe_load((repo / "params.yaml").read_text()), TINY)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "-qam", "tiny params"], repo, env)

    run(["dvc", "repro"], repo, env)
    rewritten = run(["git", "status", "--porcelain", "--untracked-files=no"], repo, env)
    assert "reports/" in rewritten and "dvc.lock" in rewritten, "the run did rewrite tracked outputs"
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    first = client.get_model_version("clone-classifier", "1")
    assert first.tags["git.dirty"] == "false", first.tags.get("git.dirty_files")

    with open(repo / EDITED, "a") as fh:
        fh.write("# an edit that is not committed\n")
    run(["dvc", "repro"], repo, env)
    second = client.get_model_version("clone-classifier", "2")
    assert second.tags["git.dirty"] == "true" and second.tags["git.dirty_files"] == EDITED
    assert f"with edits not in the commit: {EDITED}" in second.description
