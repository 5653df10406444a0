"""MLflow runs, lineage tags and the registry policy.

One store for every run: MLFLOW_TRACKING_URI when set, else params
`tracking.uri`, else an SQLite database and artifact folder at the repository
root. Runs that DVC executes in a temporary copy of the workspace
(`dvc exp run --temp/--queue` work under `.dvc/tmp/exps/`) resolve the root of
the real workspace, so they land in the same store as workspace runs.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path

from sentipipe.config import Params, TrackingParams

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


def configure(params: TrackingParams, root: Path | None = None) -> str:
    """Point MLflow at the store and make sure the experiment exists; return the experiment id."""
    import mlflow

    root = root or workspace_root()
    uri = tracking_uri(params, root)
    # The registry follows the tracking URI unless MLFLOW_REGISTRY_URI says otherwise. Not set
    # here: mlflow.set_registry_uri() exports the variable, which would pin later calls.
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(params.experiment)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if uri == f"sqlite:///{root / DB_NAME}":
        artifact_location = (root / ARTIFACTS_DIR).as_uri()
    try:
        return mlflow.create_experiment(params.experiment, artifact_location=artifact_location)
    except Exception:  # created concurrently by another run: use theirs
        experiment = mlflow.get_experiment_by_name(params.experiment)
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


def flatten(params: Params, sections: Iterable[str] | None = None) -> dict[str, str]:
    """`section.key` -> value as text for the given sections (default: the classifier's), nested ones dotted."""
    dumped = params.model_dump()
    wanted = list(sections) if sections is not None else [s for s in dumped if s != "generator"]
    out: dict[str, str] = {}

    def walk(prefix: str, values: dict) -> None:
        for key, value in values.items():
            if isinstance(value, dict) and key != "label_map":
                walk(f"{prefix}{key}.", value)
            else:
                out[f"{prefix}{key}"] = str(value)

    for section in wanted:
        walk(f"{section}.", dumped[section])
    return out


def file_md5(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def dvc_lock_hashes(inputs: Iterable[str | Path], lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """The hashes dvc.lock records for the outputs these inputs come from (a file or its folder)."""
    import yaml

    if not lock.is_file():
        return {}
    try:
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    except yaml.YAMLError:
        return {}
    recorded = {out["path"]: out.get("md5", "") for stage in stages.values() for out in stage.get("outs", [])}
    found = {}
    for path in map(Path, inputs):
        for candidate in (path, *path.parents):
            if candidate.as_posix() in recorded:
                found[f"dvc.lock.{candidate.as_posix()}"] = recorded[candidate.as_posix()]
                break
    return found


def lineage_tags(inputs: Iterable[str | Path], device: str) -> dict[str, str]:
    """git commit and dirty flag, data hashes (the files' md5 and what dvc.lock recorded), device, versions."""
    import mlflow
    import torch

    import sentipipe

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    tags = {
        "git.commit": commit or "unknown",
        "git.dirty": "unknown" if status is None else str(bool(status)).lower(),
        "device": device,
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
