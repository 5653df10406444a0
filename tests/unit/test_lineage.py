"""Lineage tags: git.dirty describes the code and params, not the outputs the pipeline writes; the rows' hash."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sentipipe.tracking import cpu_model, edited_files, lineage_tags, rows_md5, written_by_stages

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
GIT_ENV["GIT_COMMITTER_EMAIL"] = "t@example.invalid"

# Two pipelines shaped like the project's: the default one at the root, an opt-in one with wdir ../..
PIPELINE = {
    "stages": {
        "prepare": {"cmd": "python p.py", "deps": ["p.py"], "outs": ["data/prepared"]},
        "train": {
            "cmd": "python t.py",
            "deps": ["src/pkg/train.py", "data/prepared"],
            "outs": ["models/m/model.pt", {"models/m/checkpoint.pt": {"persist": True, "cache": False}}],
            "metrics": [{"reports/m/train.json": {"cache": False}}],
            "plots": [{"reports/m/plots/history.csv": {"cache": False}}],
        },
    }
}
OPT_IN = {"stages": {"train": {"wdir": "../..", "cmd": "python g.py", "deps": ["g.py"], "outs": ["models/g/model.pt"]}}}
TRACKED = {
    "src/pkg/train.py": "x = 1\n",
    "params.yaml": "train:\n  lr: 0.1\n",
    "README.md": "readme\n",
    "reports/m/train.json": "{}\n",
    "reports/m/plots/history.csv": "step\n",
    "dvc.lock": "schema: '2.0'\n",
    "pipeline/g/dvc.lock": "schema: '2.0'\n",
    "data/.gitignore": "/prepared\n",
    "models/m/.gitignore": "/model.pt\n",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def make_repo(root: Path) -> Path:
    """A committed project: two pipeline files, code, params and the tracked outputs a run rewrites."""
    files = {
        **TRACKED,
        "dvc.yaml": yaml.safe_dump(PIPELINE),
        "pipeline/g/dvc.yaml": yaml.safe_dump(OPT_IN),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "project")
    return root


def run_writes_its_outputs(root: Path) -> None:
    """What `dvc repro` does to tracked files on a fresh clone: reports, lock files, DVC's .gitignore entries."""
    for rel in ("reports/m/train.json", "reports/m/plots/history.csv"):
        (root / rel).write_text("rewritten by the run\n")
    for rel in ("dvc.lock", "pipeline/g/dvc.lock"):
        (root / rel).write_text("schema: '2.0'\nstages:\n  train:\n    cmd: python t.py\n")
    (root / "data/.gitignore").write_text("/prepared\n/generator\n")
    (root / "models/m/.gitignore").unlink()


def test_the_stage_outputs_are_read_from_every_pipeline_file(tmp_path):
    written = written_by_stages(make_repo(tmp_path))
    assert {"data/prepared", "models/m/model.pt", "reports/m/train.json", "reports/m/plots/history.csv"} <= written
    assert {"dvc.lock", "pipeline/g/dvc.lock", "models/g/model.pt"} <= written, "wdir ../.. resolves to the root"
    assert {"data/.gitignore", "models/m/.gitignore", "models/g/.gitignore"} <= written, "beside cached outputs"
    assert "reports/m/.gitignore" not in written, "DVC ignores nothing for an output it does not cache"
    assert not {"params.yaml", "src/pkg/train.py", "dvc.yaml"} & written


def test_outputs_a_run_rewrites_leave_the_tree_clean(tmp_path):
    root = make_repo(tmp_path)
    assert edited_files(root) == []
    run_writes_its_outputs(root)
    assert edited_files(root) == []
    (root / "notes.txt").write_text("untracked files are not the commit's code")
    assert edited_files(root) == []


@pytest.mark.parametrize("edited", ["params.yaml", "src/pkg/train.py", "README.md", "dvc.yaml"])
def test_an_edited_source_or_params_file_is_dirty(tmp_path, edited):
    root = make_repo(tmp_path)
    run_writes_its_outputs(root)
    with open(root / edited, "a") as fh:
        fh.write("# edited\n")
    assert edited_files(root) == [edited]


def test_a_staged_or_deleted_file_counts_too(tmp_path):
    root = make_repo(tmp_path)
    (root / "src/pkg/train.py").write_text("x = 2\n")
    git(root, "add", "src/pkg/train.py")
    (root / "README.md").unlink()
    assert edited_files(root) == ["README.md", "src/pkg/train.py"]


def test_a_project_in_a_subfolder_of_its_repository_names_its_own_paths(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other/file.txt").write_text("a\n")
    project = tmp_path / "project"
    project.mkdir()
    make_repo(project)  # a repository of its own at first: then fold it into the outer one
    subprocess.run(["rm", "-rf", str(project / ".git")], check=True)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "monorepo")
    run_writes_its_outputs(project)
    (tmp_path / "other/file.txt").write_text("b\n")
    assert edited_files(project) == [], "outputs are matched from the project's root; other projects do not count"
    (project / "params.yaml").write_text("train:\n  lr: 0.2\n")
    assert edited_files(project) == ["params.yaml"]


def test_the_tags_say_false_on_a_clean_run_true_with_the_files_when_edited_and_unknown_without_git(
    tmp_path, monkeypatch
):
    root = make_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    run_writes_its_outputs(root)
    tags = lineage_tags([], "cpu")
    assert tags["git.dirty"] == "false" and "git.dirty_files" not in tags and len(tags["git.commit"]) == 40
    (root / "params.yaml").write_text("train:\n  lr: 0.2\n")
    tags = lineage_tags([], "cpu")
    assert tags["git.dirty"] == "true" and tags["git.dirty_files"] == "params.yaml"
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above it either
    tags = lineage_tags([], "cpu")
    assert tags["git.dirty"] == "unknown" and tags["git.commit"] == "unknown"


def test_the_cpu_tag_names_the_first_processor_and_the_kernels_vector_width():
    import torch

    width = torch.backends.cpu.get_cpu_capability()
    info = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
        "model name\t: AMD EPYC 7B13 64-Core Processor\n\n"
        "processor\t: 1\nmodel name\t: another\n"
    )
    assert cpu_model(info) == f"AMD EPYC 7B13 64-Core Processor (25/1), {width}"
    assert cpu_model("").endswith(f", {width}") and not cpu_model("").startswith(",")
    assert lineage_tags([], "cpu")["host.cpu"] == cpu_model()


def test_the_rows_hash_ignores_order_and_writer_but_not_a_label(tmp_path):
    frame = pd.DataFrame({"text": ["good", "bad", "fine"], "label": ["pos", "neg", "pos"], "source": ["a"] * 3})
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    frame.iloc[::-1].drop(columns="source").to_parquet(tmp_path / "b.parquet", index=False, compression="gzip")
    assert rows_md5(tmp_path / "a.parquet", ("text", "label")) == rows_md5(tmp_path / "b.parquet", ("text", "label"))
    frame.assign(label=["pos", "neg", "neg"]).to_parquet(tmp_path / "c.parquet", index=False)
    assert rows_md5(tmp_path / "a.parquet", ("text", "label")) != rows_md5(tmp_path / "c.parquet", ("text", "label"))


def test_every_tracked_file_the_real_pipelines_write_is_declared():
    """A tracked report no stage declares would make every run dirty: reports/** and the lock files are outputs."""
    from tests.helpers import REPO

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    written = written_by_stages(REPO)
    produced = [f for f in tracked if f.startswith("reports/") or f.endswith("dvc.lock") or f.endswith(".gitignore")]
    undeclared = [f for f in produced if not any(f == w or f.startswith(w + "/") for w in written)]
    assert undeclared == [".dvc/.gitignore", ".gitignore"], undeclared
    assert not {"params.yaml", "dvc.yaml", "pipeline/generator/dvc.yaml"} & written
    assert not [w for w in written if w.startswith("src/")]
