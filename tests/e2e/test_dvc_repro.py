"""`dvc repro` for real, on tiny params, in a temporary copy of the repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, copy_repo, merge, venv_env

pytestmark = pytest.mark.e2e

TINY_PARAMS = {
    "data": {"max_rows": 400},
    "classifier": {
        "embed": {"source": "minilm", "mode": "pieces", "dim": 384},
        "train": {"max_steps": 20, "eval_every": 10, "hidden_size": 32, "batch_size": 32, "freeze_embeddings": False},
        # 20 steps lose to the baselines: the gate is tested elsewhere, here the plumbing to a champion.
        "register": {"model_name": "e2e-classifier", "beat_baseline": False},
    },
    "generator": {
        "train": {"max_steps": 60, "eval_every": 30, "embed_dim": 16, "hidden_size": 48, "batch_size": 8, "bptt": 32},
        "sample": {"max_length": 60},
        "evaluate": {"prompts": ["The movie"]},
        "register": {"model_name": "e2e-generator", "beat_baseline": False},
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
    # Before the opt-in generator runs: the default pipeline's file is clean on its own.
    first.status = json.loads(run(["dvc", "status", "dvc.yaml", "--json"], repo, env).stdout)
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
    assert metrics["val"]["bpc"] > 0 and metrics["baseline"]["order"] >= 1
    args = ["sentipipe", "generate", "The movie", "Qzx\u00e9 \U0001f600", "--seed", "7", "--max-length", "40"]
    first = run(args, repo, env).stdout
    assert first == run(args, repo, env).stdout, "the same seed must give the same text"
    lines = first.splitlines()
    assert lines[0].startswith("The movie") and "not in the vocabulary" in first


def test_the_default_repro_is_the_classifiers_and_the_generator_is_opt_in(repro):
    _, _, first, generator = repro
    ran = {line.split("'")[1] for line in first.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"ingest", "prepare", "tokenize", "embed", "teacher", "train", "evaluate", "register"}
    assert first.status == {}, "`dvc status dvc.yaml` is clean after the default run alone"
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
    # `dvc queue start` returns once its workers run, but they inherit its output: waiting for that output to
    # close waits for the workers to exit. Under load, a worker told by DVC's monitor to shut down on an empty
    # queue while its task still ran once finished the task and then idled for good (worker log, dvc-task).
    # So the starter writes to a file, the queue's status decides, and the workers are stopped here.
    with open(repo / "queue-start.log", "w") as log:
        starter = subprocess.Popen(
            ["dvc", "queue", "start", "-j", "2"], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            status = run(["dvc", "queue", "status"], repo, env).stdout
            if "Success" in status and "Queued" not in status and "Running" not in status:
                break
            time.sleep(3)
    finally:
        subprocess.run(["dvc", "queue", "stop"], cwd=repo, env=env, capture_output=True, timeout=120)
        try:
            starter.wait(timeout=60)
        except subprocess.TimeoutExpired:
            starter.kill()
            starter.wait()
    assert status.count("Success") == 2, status
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sentipipe-classifier")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "dvc.exp_name" in r.data.tags]
    assert sorted(r.data.params["train.bidirectional"] for r in runs) == ["False", "True"]
    assert {r.data.params["train.cell"] for r in runs} == {"gru"} and all(r.info.status == "FINISHED" for r in runs)
    shown = run(["dvc", "exp", "show", "--json"], repo, env).stdout
    assert all(r.data.tags["dvc.exp_name"] in shown for r in runs)


def _edit(path: Path) -> str:
    """Insert one comment line above the module's first definition; return the original text."""
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(("def ", "class ")))
    path.write_text("".join([*lines[:index], "# an edit\n", *lines[index:]]))
    return original


def _ran(proc: subprocess.CompletedProcess) -> set[str]:
    return {line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")}


GENERATOR_STAGES = {f"{GENERATOR}:{s}" for s in ("tokenize", "train", "evaluate", "register")}


@pytest.mark.parametrize(
    "module, stale",
    [
        ("src/sentipipe/tasks/classifier/evaluate.py", {"evaluate"}),
        ("src/sentipipe/tasks/classifier/network.py", {"train", "evaluate", "register"}),
        ("src/sentipipe/tasks/classifier/embed.py", {"embed"}),
        ("src/sentipipe/data/split.py", {"prepare"}),
        (
            "src/sentipipe/text/vocab.py",
            {"tokenize", "embed", "teacher", "train", "evaluate", "register", *GENERATOR_STAGES},
        ),
        ("src/sentipipe/tasks/classifier/augment.py", {"teacher", "train"}),
        # the served model carries the n-gram (mixture.py): evaluate fits it, register's pyfunc samples it
        ("src/sentipipe/tasks/generator/ngram.py", {f"{GENERATOR}:evaluate", f"{GENERATOR}:register"}),
        ("src/sentipipe/tasks/generator/units.py", GENERATOR_STAGES),
    ],
)
def test_a_code_edit_makes_exactly_the_stages_that_run_it_stale(repro, module, stale):
    """No upstream stage, and no stage of the other task, is named: each stage's deps are the code it runs."""
    repo, env, *_ = repro
    original = _edit(repo / module)
    try:
        status = set(json.loads(run(["dvc", "status", "--json"], repo, env).stdout))
    finally:
        (repo / module).write_text(original)
    assert status == stale, f"{module}: dvc status named {sorted(status)}"


def test_dvc_repro_reruns_an_edited_stage_and_what_its_new_outputs_touch(repro):
    repo, env, *_ = repro
    module = repo / "src/sentipipe/tasks/classifier/evaluate.py"
    original = _edit(module)
    try:
        # a comment: the stage reruns, its outputs come out the same, so register does not
        assert _ran(run(["dvc", "repro"], repo, env)) == {"evaluate"}
    finally:
        module.write_text(original)
    assert _ran(run(["dvc", "repro"], repo, env)) == {"evaluate"}
    assert json.loads(run(["dvc", "status", "--json"], repo, env).stdout) == {}


def _set_params(repo: Path, search: dict | None = None, **train) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["classifier"]["train"].update(train)
    params["classifier"]["search"].update(search or {})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _checkpoint_step(path: Path) -> int:
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["step"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return 0


def test_a_repro_killed_with_sigkill_resumes_and_ends_like_an_uninterrupted_run(repro):
    """A real `dvc repro`, killed (SIGKILL, process group) after a checkpoint, then run again."""
    import os
    import signal
    import time

    import torch
    from mlflow import MlflowClient

    repo, env, *_ = repro
    # a run resumes from its checkpoint; a search (its trials are not checkpointed) starts again: none here
    _set_params(repo, max_steps=300, eval_every=10, evals_per_pass=None, patience=0, search={"trials": 0})
    checkpoint, report = repo / "models/classifier/checkpoint.pt", repo / "reports/classifier/train.json"
    before = checkpoint.stat().st_mtime
    proc = subprocess.Popen(
        ["dvc", "repro", "train"],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint.stat().st_mtime > before and _checkpoint_step(checkpoint) >= 20:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run must be killed mid-training"
    killed_at = _checkpoint_step(checkpoint)
    assert 20 <= killed_at < 300
    run_id = torch.load(checkpoint, map_location="cpu", weights_only=False)["run_id"]
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    assert client.get_run(run_id).info.status == "RUNNING", "SIGKILL leaves the run open"

    resumed = run(["dvc", "repro", "train"], repo, env)
    assert f"resuming run {run_id} after step {killed_at}" in resumed.stdout
    resumed_report = json.loads(report.read_text())
    resumed_weights = torch.load(repo / "models/classifier/model.pt", weights_only=True)["state_dict"]
    history = client.get_metric_history(run_id, "curve_val_loss")
    assert resumed_report["run_id"] == run_id and client.get_run(run_id).info.status == "FINISHED"
    assert sorted(m.step for m in history) == list(range(10, 301, 10)), "one run holds every evaluation once"

    straight = run(["dvc", "repro", "-f", "train"], repo, env)  # the finished checkpoint is not resumed
    assert "resuming" not in straight.stdout
    straight_report = json.loads(report.read_text())
    assert straight_report["run_id"] != run_id
    for key in ("best_step", "best_val_accuracy", "best_val_loss", "steps_run"):
        assert resumed_report[key] == straight_report[key], key
    straight_weights = torch.load(repo / "models/classifier/model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(resumed_weights[k], straight_weights[k]) for k in straight_weights)
    trials = yaml.safe_load((REPO / "params.yaml").read_text())["classifier"]["search"]["trials"]
    train = {k: TINY_PARAMS["classifier"]["train"][k] for k in ("max_steps", "eval_every")}
    evals = yaml.safe_load((REPO / "params.yaml").read_text())["classifier"]["train"]["evals_per_pass"]
    _set_params(repo, patience=4, evals_per_pass=evals, search={"trials": trials}, **train)
    run(["dvc", "repro"], repo, env)
