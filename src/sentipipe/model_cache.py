"""Registered models on local disk, so `sentipipe predict` starts in about two seconds, not eight.

A model version never changes once registered, so its files are kept under
the cache (`$SENTIPIPE_CACHE/models`, by store, name and version) after the
first download. What an alias points at can change: it is asked of the store
every time, with one SQL query on a local SQLite store or one REST call on a
tracking server, neither of which needs MLflow imported; any other store goes
through MLflow. Loading a cached version builds the task's python model from
the MLmodel file the way MLflow's loader does (artifacts and model config),
minus MLflow's own start-up.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import yaml

from sentipipe.errors import SentipipeError
from sentipipe.io import cache_dir


def cache_root() -> Path:
    return cache_dir() / "models"


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """models:/NAME@ALIAS or models:/NAME/VERSION -> (name, alias, version)."""
    if not uri.startswith("models:/"):
        raise SentipipeError(f"{uri}: not a registry URI (models:/NAME@ALIAS or models:/NAME/VERSION)")
    rest = uri.removeprefix("models:/").strip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, alias, None
    name, _, version = rest.rpartition("/")
    if not name or not version.isdigit():
        raise SentipipeError(f"{uri}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return name, None, version


def _alias_from_sqlite(path: str, name: str, alias: str) -> str | None:
    if not Path(path).is_file():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            row = db.execute(
                "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", (name, alias)
            ).fetchone()
        except sqlite3.DatabaseError:
            return None  # another schema: let MLflow answer
    return str(row[0]) if row else "missing"


def _alias_from_server(uri: str, name: str, alias: str) -> str | None:
    query = urllib.parse.urlencode({"name": name, "alias": alias})
    try:
        with urllib.request.urlopen(
            f"{uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias?{query}", timeout=10
        ) as r:
            return str(json.load(r)["model_version"]["version"])
    except urllib.error.HTTPError as exc:
        return "missing" if exc.code == 404 else None
    except (OSError, KeyError, ValueError):
        return None


def _alias_from_mlflow(tracking_uri: str, name: str, alias: str) -> str:
    from mlflow import MlflowClient  # noqa: PLC0415 - the slow path, for stores the fast ones cannot read
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        return str(
            MlflowClient(tracking_uri, registry_uri=tracking_uri).get_model_version_by_alias(name, alias).version
        )
    except MlflowException:
        return "missing"


def resolve(tracking_uri: str, model_uri: str) -> tuple[str, str]:
    """(name, version) the URI means now."""
    name, alias, version = parse_model_uri(model_uri)
    if version is None:
        found = None
        if tracking_uri.startswith("sqlite:///"):
            found = _alias_from_sqlite(tracking_uri.removeprefix("sqlite:///"), name, alias)
        elif tracking_uri.startswith(("http://", "https://")):
            found = _alias_from_server(tracking_uri, name, alias)
        version = found or _alias_from_mlflow(tracking_uri, name, alias)
        if version == "missing":
            raise SentipipeError(
                f"cannot load {model_uri}: no version has alias {alias!r} (has `dvc repro` registered one?)"
            )
    return name, version


def local_model(tracking_uri: str, model_uri: str) -> Path:
    """The version's files on local disk, downloaded the first time through MLflow."""
    name, version = resolve(tracking_uri, model_uri)
    store = hashlib.sha256(tracking_uri.encode()).hexdigest()[:12]
    target = cache_root() / store / name / version
    if (target / "MLmodel").is_file():
        return target
    import mlflow.artifacts  # noqa: PLC0415 - only a first download needs it
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        try:
            mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=tmp, tracking_uri=tracking_uri)
        except MlflowException as exc:
            raise SentipipeError(f"cannot load {model_uri}: {exc.message.splitlines()[0]}") from None
        downloaded = next(Path(tmp).rglob("MLmodel")).parent
        if not target.exists():  # another process may have won the race: its copy is the same version
            shutil.move(str(downloaded), target)
    return target


def load_python_model(folder: Path, model_class: type):
    """The task's python model from a downloaded pyfunc folder: what MLflow's code-model loader builds."""
    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["python_function"]
    artifacts = {key: str(folder / spec["path"]) for key, spec in (flavor.get("artifacts") or {}).items()}
    context = SimpleNamespace(artifacts=artifacts, model_config=flavor.get("config") or {})
    model = model_class()
    model.load_context(context)
    return model
