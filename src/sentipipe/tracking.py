"""MLflow: the store, experiments, runs (opened by train, re-attached by later stages) and lineage tags.

One store for every run: MLFLOW_TRACKING_URI when set, else params
`tracking.uri`, else an SQLite database and artifact folder at the repository
root. Runs that DVC executes in a temporary copy of the workspace
(`dvc exp run --temp/--queue` work under `.dvc/tmp/exps/`) resolve the root of
the real workspace, so they land in the same store as workspace runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path

import yaml

from sentipipe.config import TrackingParams
from sentipipe.io import parquet_batches, read_json, require

DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
_EXPS_MARKER = os.sep + os.path.join(".dvc", "tmp", "exps") + os.sep


def workspace_root(cwd: str | Path | None = None) -> Path:
    """The real workspace, also from inside a DVC experiment's temporary copy."""
    path = str(Path(cwd or os.getcwd()).resolve())
    if _EXPS_MARKER in path + os.sep:
        return Path((path + os.sep).split(_EXPS_MARKER)[0])
    return Path(path)


def tracking_uri(params: TrackingParams, root: Path | None = None) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if params.uri:
        return params.uri
    return f"sqlite:///{(root or workspace_root()) / DB_NAME}"


def configure(params: TrackingParams, experiment_name: str, root: Path | None = None) -> str:
    """Point MLflow at the store and make sure the experiment exists; return the experiment id."""
    import mlflow

    root = root or workspace_root()
    uri = tracking_uri(params, root)
    # The registry follows the tracking URI unless MLFLOW_REGISTRY_URI says otherwise. Not set
    # here: mlflow.set_registry_uri() exports the variable, which would pin later calls.
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if uri == f"sqlite:///{root / DB_NAME}":
        artifact_location = (root / ARTIFACTS_DIR).as_uri()
    try:
        return mlflow.create_experiment(experiment_name, artifact_location=artifact_location)
    except Exception:  # created concurrently by another run: use theirs
        experiment = mlflow.get_experiment_by_name(experiment_name)
        if experiment is None:
            raise
        return experiment.experiment_id


def run_exists(run_id: str) -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient().get_run(run_id)
    except MlflowException:
        return False
    return True


def attach_run(params: TrackingParams, experiment_name: str, report: Path):
    """Reopen the MLflow run that a train stage recorded in its report (evaluate and register add to it)."""
    import mlflow

    require(report)
    configure(params, experiment_name)
    return mlflow.start_run(run_id=read_json(report)["run_id"])


def flatten(values: dict, prefix: str = "") -> dict[str, str]:
    """Nested params as `section.key` -> value as text (a label map stays one value)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict) and key != "label_map":
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def file_md5(path: str | Path) -> str:
    """The md5 of a file, or of a folder's files (their names and contents, in name order)."""
    path = Path(path)
    digest = hashlib.md5()
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode())
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# The identity of the data a model was validated on: the registry compares only models with the same one.
VALIDATION_TAG = "data.validation.md5"


def rows_md5(path: str | Path, columns: Iterable[str]) -> str:
    """The md5 of a Parquet file's rows in these columns, in any order, whatever wrote the file.

    A file's own md5 changes with the writer's version and the row order; the rows a model is
    measured on do not.
    """

    columns = list(columns)
    rows = []
    for batch in parquet_batches(path, columns):
        values = [batch.column(c).to_pylist() for c in columns]
        rows += [hashlib.md5(json.dumps(row, ensure_ascii=False).encode()).digest() for row in zip(*values)]
    return hashlib.md5(b"".join(sorted(rows))).hexdigest()


def _git(*args: str, cwd: str | Path | None = None, strip: bool = True) -> str | None:
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() if strip else proc.stdout


def _shorten(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _entries(entries: list | None) -> list[tuple[str, dict]]:
    """A dvc.yaml entry list (`- path` or `- path: {options}`) as (path, options)."""
    return [(e, {}) if isinstance(e, str) else next(iter(e.items())) for e in entries or []]


def written_by_stages(root: str | Path = ".", pipelines: Iterable[str] | None = None) -> set[str]:
    """What the pipelines' stages write, as paths from `root`: their outs, metrics and plots, each pipeline's
    dvc.lock, and the .gitignore DVC keeps beside a cached output. A file, or a folder and all it holds.

    A stage list built with `foreach`/templating is not resolved here; its outputs then count as edits.
    """
    root = Path(root)
    if pipelines is None:
        listed = _git("ls-files", "-z", "--", "dvc.yaml", "*/dvc.yaml", cwd=root)
        pipelines = [p for p in (listed or "").split("\0") if p] or ["dvc.yaml"]
    written: set[str] = set()
    for pipeline in pipelines:
        folder = Path(pipeline).parent
        try:
            stages = (yaml.safe_load((root / pipeline).read_text()) or {}).get("stages") or {}
        except (OSError, yaml.YAMLError):
            continue
        written.add((folder / "dvc.lock").as_posix())
        for stage in stages.values():
            if not isinstance(stage, dict):
                continue
            wdir = folder / stage.get("wdir", ".")
            for out, options in (o for key in ("outs", "metrics", "plots") for o in _entries(stage.get(key))):
                path = Path(os.path.normpath(wdir / out))
                written.add(path.as_posix())
                if (options or {}).get("cache", True):  # DVC git-ignores what it caches
                    written.add((path.parent / ".gitignore").as_posix())
    return written


def edited_files(root: str | Path = ".") -> list[str] | None:
    """Tracked files under `root` that differ from the commit, other than what the stages write (None: no git).

    These are the code, params and inputs that trained a model: a fresh clone's `dvc repro` rewrites
    tracked reports and dvc.lock before training ends, and those must not make its lineage dirty.
    """
    args = ("status", "--porcelain", "-z", "--untracked-files=no", "--no-renames", "--", ".")
    status = _git(*args, cwd=root, strip=False)
    prefix = _git("rev-parse", "--show-prefix", cwd=root)
    if status is None or prefix is None:
        return None
    # porcelain entries are "XY path", paths from the repository's top; the project may sit in a subfolder
    changed = [e[3:].removeprefix(prefix) for e in status.split("\0") if len(e) > 3]
    written = written_by_stages(root)
    return sorted(f for f in changed if not any(f == w or f.startswith(w + "/") for w in written))


def _recorded_outputs(locks: Iterable[Path]) -> dict[str, str]:
    recorded = {}
    for lock in locks:
        try:
            stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        recorded.update({out["path"]: out.get("md5", "") for st in stages.values() for out in st.get("outs", [])})
    return recorded


def dvc_lock_hashes(inputs: Iterable[str | Path], locks: Iterable[Path] | None = None) -> dict[str, str]:
    """The hashes the pipelines' dvc.lock files record for the outputs these inputs come from (file or folder).

    Every pipeline's stages run from the repository root, so their lock files name paths from there.
    """
    if locks is None:
        locks = [Path("dvc.lock"), *sorted(Path("pipeline").glob("*/dvc.lock"))]
    recorded = _recorded_outputs(locks)
    found = {}
    for path in map(Path, inputs):
        for candidate in (path, *path.parents):
            if candidate.as_posix() in recorded:
                found[f"dvc.lock.{candidate.as_posix()}"] = recorded[candidate.as_posix()]
                break
    return found


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model and the vector instructions torch's kernels use here: "Intel(R) Xeon(R) ... (6/207), AVX512".

    Training is bit-identical between hosts of one CPU model, not across models: the same code, data and
    params gave test 82.50 on an AMD EPYC host and 82.40 on an Intel Xeon one (docs/evidence.md
    #make-run-intel-2026-12-07). Runs that differ only in this tag differ by float rounding, not by code.
    """
    import torch  # noqa: PLC0415 - lineage_tags' callers have it loaded

    fields: dict[str, str] = {}
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:  # not Linux
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        if not line.strip():
            break  # the first processor's block is enough
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    family = f" ({fields['cpu family']}/{fields['model']})" if "cpu family" in fields and "model" in fields else ""
    return f"{name}{family}, {torch.backends.cpu.get_cpu_capability()}"


def lineage_tags(inputs: Iterable[str | Path], device: str) -> dict[str, str]:
    """git commit and dirty flag, data hashes (the files' md5 and what dvc.lock recorded), device, CPU, versions."""
    import mlflow
    import torch

    import sentipipe

    commit = _git("rev-parse", "HEAD")
    edited = edited_files() if commit else None
    tags = {
        "git.commit": commit or "unknown",
        "git.dirty": "unknown" if edited is None else str(bool(edited)).lower(),
        **({"git.dirty_files": _shorten(", ".join(edited))} if edited else {}),
        "device": device,
        "host.cpu": cpu_model(),
        "versions.torch": torch.__version__,
        "versions.cuda": str(torch.version.cuda),
        "versions.mlflow": mlflow.__version__,
        "versions.sentipipe": sentipipe.__version__,
        "versions.python": platform.python_version(),
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.exp_name"] = os.environ["DVC_EXP_NAME"]
    inputs = list(inputs)
    for path in inputs:
        tags[f"data.md5.{Path(path).as_posix()}"] = file_md5(path)
    tags.update(dvc_lock_hashes(inputs))
    return tags
