"""Shared fixtures: a tiny labelled corpus and an isolated MLflow store per test."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]

POSITIVE = [
    "a wonderful, moving film with great acting",
    "brilliant and funny, i loved every minute",
    "superb direction and a delightful script",
    "an excellent, heartfelt story, beautifully shot",
    "great fun, charming and smart",
    "the best movie of the year, truly wonderful",
    "a delightful surprise with a brilliant cast",
    "moving, funny and excellent throughout",
]
NEGATIVE = [
    "a dull, boring mess with terrible acting",
    "awful script and a tedious plot, i hated it",
    "the worst film of the year, truly awful",
    "boring, lifeless and far too long",
    "a terrible waste of a good cast",
    "tedious and dull from start to finish",
    "an awful, stupid and boring movie",
    "lifeless direction and a terrible script",
]


def tiny_corpus(copies: int = 6) -> pd.DataFrame:
    """Distinct sentences built from clearly polar phrases: learnable in a few epochs."""
    rows = []
    for k in range(copies):
        for i, text in enumerate(POSITIVE):
            rows.append((f"p{k}-{i}", f"{text} number {k}", "positive", "tiny"))
        for i, text in enumerate(NEGATIVE):
            rows.append((f"n{k}-{i}", f"{text} number {k}", "negative", "tiny"))
    return pd.DataFrame(rows, columns=["id", "text", "label", "source"])


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


TINY = {
    "data": {"val_size": 0.2, "test_size": 0.2, "seed": 1},
    "tokenize": {"min_freq": 1},
    "embed": {"source": "random", "dim": 16},
    "train": {
        "hidden_size": 16,
        "epochs": 12,
        "batch_size": 8,
        "lr": 0.01,
        "dropout": 0.0,
        "embed_dropout": 0.0,
        "threads": 1,
    },
    "register": {"model_name": "tiny-sentiment"},
    "tracking": {"experiment": "tiny"},
}


ALL_STAGES = ("prepare", "tokenize", "embed", "train", "evaluate", "register")


def tiny_params(overrides: dict | None = None):
    from sentipipe.config import parse_params

    raw = {k: dict(v) for k, v in TINY.items()}
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    return parse_params(raw)


def run_tiny_pipeline(overrides: dict | None = None, only: tuple[str, ...] = ALL_STAGES):
    from sentipipe import stages

    params = tiny_params(overrides)
    for name in only:
        stages.STAGES[name](params)
    return params


@pytest.fixture
def tiny_workspace(workdir, mlflow_store):
    """A workspace whose ingest output is the tiny corpus; MLflow in a temp SQLite store."""
    from sentipipe import stages

    stages.RAW.parent.mkdir(parents=True)
    tiny_corpus().to_parquet(stages.RAW, index=False)
    return workdir


def torchrun(script: str, cwd: Path, processes: int = 2):
    """`torchrun --standalone --nproc_per_node=N pipeline/<script>` in `cwd`; fails the test on a non-zero exit."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    proc = subprocess.run(
        [*cmd, str(REPO / "pipeline" / script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc
