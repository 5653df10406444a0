"""What several test modules share: a tiny corpus, tiny params, running stages, torchrun, a repo copy."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

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


# Tiny params as a params.yaml mapping: seconds per stage on a CPU.
TINY = {
    "data": {"val_size": 0.2, "test_size": 0.2, "seed": 1},
    "classifier": {
        "experiment": "tiny",
        "tokenize": {"min_freq": 1},
        "embed": {"source": "random", "dim": 16},
        "train": {
            "hidden_size": 16,
            "max_steps": 96,  # 12 passes over the tiny corpus's 58 training sentences
            "eval_every": 8,
            "patience": 0,
            "batch_size": 8,
            "lr": 0.01,
            "dropout": 0.0,
            "embed_dropout": 0.0,
            "threads": 1,
        },
        "register": {"model_name": "tiny-classifier"},
    },
    "generator": {
        "experiment": "tiny-generator",
        "train": {
            "max_steps": 100,
            "eval_every": 25,
            "patience": 0,
            "embed_dim": 16,
            "hidden_size": 48,
            "batch_size": 4,
            "bptt": 24,
            "threads": 1,
        },
        "sample": {"max_length": 50},
        "evaluate": {"prompts": ["a wonderful"]},
        # a tiny corpus of repeated phrases is an n-gram's home ground: the gate is tested on its own
        "register": {"model_name": "tiny-generator", "beat_baseline": False},
    },
}
CLASSIFIER_STAGES = ("prepare", "tokenize", "embed", "teacher", "train", "evaluate", "register")
GENERATOR_STAGES = ("prepare", "tokenize", "train", "evaluate", "register")


def merge(base: dict, override: dict) -> dict:
    """`override` into `base`, nested mappings merged key by key (in place; returns base)."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def tiny_raw(overrides: dict | None = None) -> dict:
    """The tiny params mapping with `overrides` (same shape as params.yaml) merged in."""
    return merge(copy.deepcopy(TINY), overrides or {})


def classifier_params(overrides: dict | None = None):
    from sentipipe.tasks.classifier.params import parse

    return parse(tiny_raw(overrides))


def generator_params(overrides: dict | None = None):
    from sentipipe.tasks.generator.params import parse

    return parse(tiny_raw(overrides))


def stage(task: str, name: str):
    """The stage function: data stages for ingest and prepare, else the task's."""
    import importlib

    if name in ("ingest", "prepare"):
        return getattr(importlib.import_module(f"sentipipe.data.{name}"), name)
    return getattr(importlib.import_module(f"sentipipe.tasks.{task}.{name}"), name)


def _run(task: str, params, overrides: dict | None, only: tuple[str, ...]):
    from sentipipe.config import DataConfig, parse

    for name in only:
        stage(task, name)(parse(tiny_raw(overrides), DataConfig) if name in ("ingest", "prepare") else params)
    return params


def run_tiny_pipeline(overrides: dict | None = None, only: tuple[str, ...] = CLASSIFIER_STAGES):
    """Run the classifier's stages (and prepare) in the current directory on tiny params; return the params."""
    return _run("classifier", classifier_params(overrides), overrides, only)


def run_tiny_generator(overrides: dict | None = None, only: tuple[str, ...] = GENERATOR_STAGES):
    """Run the generator's stages (and prepare) in the current directory on tiny params; return the params."""
    return _run("generator", generator_params(overrides), overrides, only)


def write_raw_corpus(work: Path) -> None:
    """What ingest would write: the tiny corpus as data/raw/corpus.parquet under `work`."""
    from sentipipe.data.paths import RAW

    (work / RAW).parent.mkdir(parents=True, exist_ok=True)
    tiny_corpus().to_parquet(work / RAW, index=False)


def write_params(work: Path, raw: dict) -> Path:
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def venv_env(**extra: str) -> dict[str, str]:
    """This environment with the venv's bin first on PATH (as `make` sets it)."""
    env = {**os.environ, **extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def torchrun(script: str, cwd: Path, processes: int = 2) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=N <script>` (a path from the repository root) in `cwd`."""
    env = venv_env(OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    proc = subprocess.run([*cmd, str(REPO / script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def copy_repo(dest: Path) -> None:
    """The files git would check out (tracked and untracked-not-ignored), as a fresh repo with one commit."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "t@example.invalid"
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True, env=env)


SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The file of a project module (`sentipipe.x.y`), or None for anything else."""
    base = SRC.joinpath(*name.split("."))
    return next((c for c in (base.with_suffix(".py"), base / "__init__.py") if c.is_file()), None)


def imported_files(path: Path, processes: bool = False) -> set[Path]:
    """The project files one file imports, at module level or inside functions (read with ast; nothing run);
    with `processes`, also those it runs as a process of its own (`[sys.executable, "-m", "sentipipe...."]`)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif processes and isinstance(node, ast.List):
            values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            names = [m for flag, m in zip(values, values[1:]) if flag == "-m" and str(m).startswith("sentipipe.")]
        else:
            continue
        for name in names:
            parts = name.split(".")
            # every package on the way is imported too (sentipipe.tasks.classifier.x runs its __init__)
            found |= {f for i in range(2, len(parts) + 1) if (f := module_file(".".join(parts[:i])))}
    return found


def import_closure(path: Path) -> set[Path]:
    """Every project file `path` imports or runs as a process, directly or transitively, `path` included."""
    seen, todo = set(), [path.resolve()]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += imported_files(current, processes=True) - seen
    return seen


def _register_in_process(args):
    """One of two processes registering the same model at the same moment (spawned, so a fresh interpreter)."""
    uri, model_uri, value, barrier = args
    os.environ["MLFLOW_TRACKING_URI"] = uri
    import mlflow

    from sentipipe.registry import register
    from sentipipe.tasks.classifier.params import ClassifierRegisterParams

    mlflow.set_tracking_uri(uri)
    barrier.wait()
    metrics = {"val": {"accuracy": value}, "test": {"accuracy": value}}
    return register(model_uri, ClassifierRegisterParams(model_name="raced"), "run", metrics, "m.json", "cpu", {})


def assert_one_champion_after_a_race(tracking_uri: str, model_uri: str) -> None:
    """Two processes register an equally good model at once: one champion, one challenger, never two."""
    import multiprocessing as mp

    from mlflow import MlflowClient

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            results = pool.map(_register_in_process, [(tracking_uri, model_uri, 0.8, barrier)] * 2)
    assert sorted(r["version"] for r in results) == [1, 2]
    assert sum(r["promoted"] for r in results) == 1, [(r["version"], r["reason"]) for r in results]
    winner = next(r for r in results if r["promoted"])
    loser = next(r for r in results if not r["promoted"])
    assert "does not beat" in loser["reason"] and loser["decision"] == "challenger"
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    assert int(client.get_model_version_by_alias("raced", "champion").version) == winner["version"]
    assert int(client.get_model_version_by_alias("raced", "challenger").version) == loser["version"]


def mapped_kb(path) -> int:
    """Resident kB of this process's mappings of `path` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        first = line.split()[0]
        if "-" in first and not first.endswith(":"):  # a mapping's header line
            inside = line.rstrip().endswith(str(path))
        elif inside and first == "Rss:":
            total += int(line.split()[1])
    return total
