"""The rules of the house (ARCHITECTURE.md), checked from the code itself: read with ast, nothing imported."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, SRC, import_closure, imported_files

PIPELINES = [REPO / "dvc.yaml", REPO / "pipeline/generator/dvc.yaml"]
TINY_INIT = 400  # characters: a package docstring, not code worth a dep


def stages() -> list:
    found = []
    for pipeline in PIPELINES:
        for name, stage in yaml.safe_load(pipeline.read_text())["stages"].items():
            wdir = (pipeline.parent / stage.get("wdir", ".")).resolve()
            script = next(a for a in shlex.split(stage["cmd"]) if a.endswith(".py"))
            deps = {(wdir / (d if isinstance(d, str) else next(iter(d)))).resolve() for d in stage["deps"]}
            found.append(pytest.param(wdir / script, deps, id=f"{pipeline.relative_to(REPO)}:{name}"))
    return found


def code(closure: set[Path]) -> set[Path]:
    """The project files that count: a tiny package __init__ is passed over."""
    return {
        f for f in closure if f.is_relative_to(SRC) and not (f.name == "__init__.py" and f.stat().st_size < TINY_INIT)
    }


@pytest.mark.parametrize("script, deps", stages())
def test_each_stage_lists_every_project_file_its_script_imports(script, deps):
    uncovered = [f for f in code(import_closure(script)) if not any(f == d or f.is_relative_to(d) for d in deps)]
    assert script in deps, f"{script} runs the stage but is not one of its deps"
    assert not uncovered, f"add to the stage's deps: {[str(f.relative_to(REPO)) for f in sorted(uncovered)]}"


@pytest.mark.parametrize("script, deps", stages())
def test_each_stage_lists_no_project_code_it_does_not_run(script, deps):
    """Exact deps: an edit elsewhere must not rerun the stage (the served model's entry file is run by MLflow)."""
    closure = code(import_closure(script))
    closure |= {f.with_name("model_code.py") for f in closure if f.name == "pyfunc.py"}
    for dep in (d for d in deps if d.is_relative_to(SRC)):
        files = sorted(dep.rglob("*.py")) if dep.is_dir() else [dep]
        extra = [f for f in code(set(files)) if f not in closure]
        assert not extra, f"{dep.relative_to(REPO)} holds code the stage never runs: {[f.name for f in extra]}"


def test_no_stage_depends_on_a_file_inside_another_stages_directory():
    """DVC could not resolve such a dep when it restored the stages from its run cache (the retrain replay)."""
    outs, deps = set(), []
    for pipeline in PIPELINES:
        for name, stage in yaml.safe_load(pipeline.read_text())["stages"].items():
            wdir = pipeline.parent / stage.get("wdir", ".")
            for key in ("outs", "metrics", "plots"):
                outs |= {(wdir / (o if isinstance(o, str) else next(iter(o)))).resolve() for o in stage.get(key, [])}
            deps += [(name, (wdir / (d if isinstance(d, str) else next(iter(d)))).resolve()) for d in stage["deps"]]
    inside = [(n, str(d.relative_to(REPO))) for n, d in deps for o in outs if d != o and d.is_relative_to(o)]
    assert not inside, f"depend on the whole output instead: {inside}"


def test_no_module_is_over_400_lines():
    long = {str(f.relative_to(REPO)): n for f in SRC.rglob("*.py") if (n := len(f.read_text().splitlines())) > 400}
    assert not long, long


def test_the_served_models_import_nothing_from_training():
    for entry in SRC.glob("sentipipe/tasks/*/model_code.py"):
        training = [f for f in import_closure(entry) if f.is_relative_to(SRC / "sentipipe/training")]
        assert not training, f"{entry.parent.name}'s served model imports {training}"


def test_shared_folders_know_no_task():
    for folder in ("data", "text", "models", "training"):
        for f in (SRC / "sentipipe" / folder).rglob("*.py"):
            tasks = [t for t in imported_files(f) if t.is_relative_to(SRC / "sentipipe/tasks")]
            assert not tasks, f"{f.relative_to(REPO)} imports {tasks}"


def test_each_task_knows_no_other_task():
    tasks = [d for d in (SRC / "sentipipe/tasks").iterdir() if d.is_dir() and d.name != "__pycache__"]
    assert sorted(t.name for t in tasks) == ["classifier", "generator"]
    for task in tasks:
        for f in task.rglob("*.py"):
            others = [o for o in imported_files(f) for t in tasks if t != task and o.is_relative_to(t)]
            assert not others, f"{f.relative_to(REPO)} imports {others}"


def test_there_are_no_import_cycles():
    graph = {f: imported_files(f) for f in SRC.rglob("*.py")}
    state: dict[Path, str] = {}

    def visit(f: Path, path: list[Path]) -> None:
        state[f] = "open"
        for g in graph.get(f, ()):
            if state.get(g) == "open":
                cycle = [p.relative_to(SRC).as_posix() for p in path[path.index(g) :] + [g]]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if g not in state:
                visit(g, [*path, g])
        state[f] = "done"

    for f in graph:
        if f not in state:
            visit(f, [f])


def test_help_is_instant():
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sentipipe.cli", "--help"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0 and "predict" in proc.stdout
    assert elapsed < 1.0, f"sentipipe --help took {elapsed:.2f} s"
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, sentipipe.cli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
    ).stdout.split()
    heavy = {"torch", "mlflow", "spacy", "pandas", "sklearn", "gensim", "transformers"} & set(loaded)
    assert not heavy, f"the command line loads {heavy} before any command runs"
