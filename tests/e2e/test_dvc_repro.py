"""`dvc repro` for real, on tiny params, in a temporary copy of the repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_repo, merge, venv_env

pytestmark = pytest.mark.e2e

TINY_PARAMS = {
    "data": {"max_rows": 400},
    "classifier": {
        "embed": {"source": "minilm", "mode": "pieces", "dim": 384},
        "train": {"epochs": 2, "hidden_size": 32, "batch_size": 32, "freeze_embeddings": False},
        "register": {"model_name": "e2e-classifier"},
    },
    "generator": {
        "train": {"epochs": 2, "embed_dim": 16, "hidden_size": 48, "batch_size": 8, "bptt": 32},
        "sample": {"max_length": 60},
        "evaluate": {"ngram_max_order": 4, "prompts": ["The movie"]},
        "register": {"model_name": "e2e-generator"},
    },
}
GENERATOR = "pipeline/generator/dvc.yaml"


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
    env = {k: v for k, v in venv_env().items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "e2e"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "e2e@example.invalid"
    first = run(["dvc", "repro"], repo, env)
    generator = run(["dvc", "repro", GENERATOR], repo, env)
    return repo, env, first, generator


def test_repro_ends_with_a_champion_that_answers_raw_text(repro):
    repo, env, *_ = repro
    assert (repo / "mlflow.db").is_file(), "the default store is SQLite at the repository root"
    out = run(["sentipipe", "predict", "a wonderful, moving film", ""], repo, env).stdout.splitlines()
    assert len(out) == 2 and out[0].split("\t")[0] in {"positive", "negative"}
    assert "positive=" in out[0] and "negative=" in out[0]
    summary = run(["sentipipe", "summary"], repo, env).stdout
    assert "registered classifier: e2e-classifier version 1" in summary and "test accuracy" in summary
    assert "registered generator: e2e-generator version 1" in summary and "bits per character" in summary


def test_repro_also_registers_a_generator_that_samples_reproducibly(repro):
    repo, env, *_ = repro
    metrics = json.loads((repo / "reports/generator/metrics.json").read_text())
    assert metrics["val"]["bpc"] > 0 and metrics["baseline"]["kneser_ney_order"] in range(1, 5)
    args = ["sentipipe", "generate", "The movie", "Qzx\u00e9 \U0001f600", "--seed", "7", "--max-length", "40"]
    first = run(args, repo, env).stdout
    assert first == run(args, repo, env).stdout, "the same seed must give the same text"
    lines = first.splitlines()
    assert lines[0].startswith("The movie") and "not in the vocabulary" in first


def test_the_default_repro_is_the_classifiers_and_the_generator_is_opt_in(repro):
    _, _, first, generator = repro
    ran = {line.split("'")[1] for line in first.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"ingest", "prepare", "tokenize", "embed", "train", "evaluate", "register"}
    ran = {line.split("'")[1] for line in generator.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {f"{GENERATOR}:{s}" for s in ("tokenize", "train", "evaluate", "register")}


def test_second_repro_is_a_no_op_and_status_is_clean(repro):
    repo, env, *_ = repro
    for target in ([], [GENERATOR]):
        again = run(["dvc", "repro", *target], repo, env)
        assert "Running stage" not in again.stdout
        assert "up to date" in again.stdout
    assert json.loads(run(["dvc", "status", "--json"], repo, env).stdout) == {}


def test_metrics_are_visible_to_dvc(repro):
    repo, env, *_ = repro
    shown = run(["dvc", "metrics", "show", "--json"], repo, env).stdout
    assert "accuracy" in shown and "best_val_accuracy" in shown


def test_the_run_carries_lineage_from_git_and_dvc_lock(repro):
    from mlflow import MlflowClient

    repo, env, *_ = repro
    run_id = json.loads((repo / "reports/classifier/train.json").read_text())["run_id"]
    tags = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}").get_run(run_id).data.tags
    head = run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()
    assert tags["git.commit"] == head
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["tokenize"]["outs"]
    assert tags["dvc.lock.data/classifier/tokens"] == next(
        o["md5"] for o in lock if o["path"] == "data/classifier/tokens"
    )


def test_queued_experiments_land_in_the_workspace_store_with_their_names(repro):
    import time

    from mlflow import MlflowClient

    repo, env, *_ = repro
    sweep = ["-S", "classifier.train.cell=gru", "-S", "classifier.train.bidirectional=true,false"]
    run(["dvc", "exp", "run", "--queue", *sweep], repo, env)
    run(["dvc", "queue", "start", "-j", "2"], repo, env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sentipipe-classifier")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "dvc.exp_name" in r.data.tags]
    assert sorted(r.data.params["train.bidirectional"] for r in runs) == ["False", "True"]
    assert {r.data.params["train.cell"] for r in runs} == {"gru"} and all(r.info.status == "FINISHED" for r in runs)
    shown = run(["dvc", "exp", "show", "--json"], repo, env).stdout
    assert all(r.data.tags["dvc.exp_name"] in shown for r in runs)


def _stale_after_editing(repo: Path, env: dict, module: str) -> tuple[set[str], set[str]]:
    """Stages `dvc status` names, and stages `dvc repro --dry` would run (both pipelines), after one edit."""
    path = repo / module
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(("def ", "class ")))
    lines.insert(index, "# an edit\n")
    path.write_text("".join(lines))
    try:
        status = set(json.loads(run(["dvc", "status", "--json"], repo, env).stdout))
        dry = run(["dvc", "repro", "--dry", "dvc.yaml", GENERATOR], repo, env).stdout
    finally:
        path.write_text(original)
    would_run = {line.split("'")[1] for line in dry.splitlines() if line.startswith("Running stage")}
    return status, would_run


CLASSIFIER_AFTER_PREPARE = {"prepare", "tokenize", "embed", "train", "evaluate", "register"}
GENERATOR_STAGES = {f"{GENERATOR}:{s}" for s in ("tokenize", "train", "evaluate", "register")}


@pytest.mark.parametrize(
    "module, changed, downstream",
    [
        ("src/sentipipe/tasks/classifier/evaluate.py", {"evaluate"}, {"evaluate", "register"}),
        ("src/sentipipe/tasks/classifier/network.py", *[{"train", "evaluate", "register"}] * 2),
        # the corpus is shared: a new split reruns both tasks
        ("src/sentipipe/data/split.py", {"prepare"}, CLASSIFIER_AFTER_PREPARE | GENERATOR_STAGES),
        (
            "src/sentipipe/tasks/generator/ngram.py",
            {f"{GENERATOR}:evaluate"},
            {f"{GENERATOR}:{s}" for s in ("evaluate", "register")},
        ),
        ("src/sentipipe/tasks/generator/units.py", GENERATOR_STAGES, GENERATOR_STAGES),
    ],
)
def test_a_code_edit_reruns_its_stage_and_what_follows_and_nothing_else(repro, module, changed, downstream):
    repo, env, *_ = repro
    status, would_run = _stale_after_editing(repo, env, module)
    assert status == changed, f"{module}: dvc status named {sorted(status)}"
    assert would_run == downstream, f"{module}: dvc repro would run {sorted(would_run)}"
