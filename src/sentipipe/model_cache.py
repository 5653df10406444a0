"""Registered models on local disk, so `sentipipe predict` starts in about two seconds, not eight.

A model version never changes once registered, so its files are kept under
the cache (`$SENTIPIPE_CACHE/models`, by store, name, version and the
version's run and creation time) after the first download. What an alias
points at can change: it is asked of the store every time, with one SQL query
on a local SQLite store or one REST call on a tracking server, neither of
which needs MLflow imported; any other store goes through MLflow. Loading a
cached version builds the task's python model from the MLmodel file the way
MLflow's loader does (artifacts and model config),
minus MLflow's own start-up.

A URI that names no version raises MissingVersion; `versions` and `model_names` then say what the
store does hold, for a message that tells the user which version to pick (refusal.without_version).
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
from sentipipe.refusal import RegisteredVersion

DELETED_STAGE = "Deleted_Internal"  # MLflow's mark on a deleted version's row


class MissingVersion(SentipipeError):
    """A registry URI that names no version: no such alias, version number or registered model."""

    def __init__(self, model_uri: str, name: str, what: str):
        super().__init__(f"cannot load {model_uri}: {what}")
        self.model_uri, self.name, self.what = model_uri, name, what


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


def _version_from_sqlite(path: str, name: str, alias: str | None, version: str | None) -> tuple[str, str] | None:
    if not Path(path).is_file():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            if alias is not None:
                row = db.execute(
                    "SELECT v.version, v.run_id, v.creation_time FROM registered_model_aliases a "
                    "JOIN model_versions v ON v.name = a.name AND v.version = a.version "
                    "WHERE a.name = ? AND a.alias = ?",
                    (name, alias),
                ).fetchone()
            else:
                row = db.execute(
                    "SELECT version, run_id, creation_time FROM model_versions "
                    "WHERE name = ? AND version = ? AND coalesce(current_stage, '') != ?",
                    (name, int(version), DELETED_STAGE),
                ).fetchone()
        except sqlite3.DatabaseError:
            return None  # another schema: let MLflow answer
    return (str(row[0]), f"{row[1]}:{row[2]}") if row else ("missing", "")


def _version_from_server(uri: str, name: str, alias: str | None, version: str | None) -> tuple[str, str] | None:
    if alias is not None:
        query, endpoint = urllib.parse.urlencode({"name": name, "alias": alias}), "registered-models/alias"
    else:
        query, endpoint = urllib.parse.urlencode({"name": name, "version": version}), "model-versions/get"
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/api/2.0/mlflow/{endpoint}?{query}", timeout=10) as r:
            found = json.load(r)["model_version"]
        return str(found["version"]), f"{found.get('run_id', '')}:{found.get('creation_timestamp', '')}"
    except urllib.error.HTTPError as exc:
        return ("missing", "") if exc.code == 404 else None
    except (OSError, KeyError, ValueError):
        return None


def _mlflow_client(tracking_uri: str):
    from mlflow import MlflowClient  # noqa: PLC0415 - for stores the fast path cannot read

    return MlflowClient(tracking_uri, registry_uri=tracking_uri)


def _version_from_mlflow(tracking_uri: str, name: str, alias: str | None, version: str | None) -> tuple[str, str]:
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    client = _mlflow_client(tracking_uri)
    try:
        found = (
            client.get_model_version_by_alias(name, alias)
            if alias is not None
            else client.get_model_version(name, version)
        )
    except MlflowException:
        return "missing", ""
    return str(found.version), f"{found.run_id}:{found.creation_timestamp}"


def resolve(tracking_uri: str, model_uri: str) -> tuple[str, str, str]:
    """(name, version, identity) the URI means now; identity (the version's run and creation time) tells a
    version 1 apart from the version 1 of a store deleted and created again at the same place."""
    name, alias, version = parse_model_uri(model_uri)
    found = None
    if tracking_uri.startswith("sqlite:///"):
        found = _version_from_sqlite(tracking_uri.removeprefix("sqlite:///"), name, alias, version)
    elif tracking_uri.startswith(("http://", "https://")):
        found = _version_from_server(tracking_uri, name, alias, version)
    resolved, identity = found or _version_from_mlflow(tracking_uri, name, alias, version)
    if resolved == "missing":
        what = f"no version has alias {alias!r}" if alias is not None else f"no version {version}"
        raise MissingVersion(model_uri, name, what)
    return name, resolved, identity


def _versions_from_sqlite(path: str, name: str) -> list[RegisteredVersion] | None:
    if not Path(path).is_file():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            numbers = db.execute(
                "SELECT version FROM model_versions WHERE name = ? AND coalesce(current_stage, '') != ? "
                "ORDER BY version DESC",
                (name, DELETED_STAGE),
            ).fetchall()
            aliases = db.execute("SELECT version, alias FROM registered_model_aliases WHERE name = ?", (name,))
            aliases = aliases.fetchall()
            tags = db.execute(
                "SELECT version, key, value FROM model_version_tags WHERE name = ? AND key LIKE 'registration.%'",
                (name,),
            ).fetchall()
        except sqlite3.DatabaseError:
            return None  # another schema: let MLflow answer
    return [
        _registered(n, [a for v, a in aliases if v == n], {k: value for v, k, value in tags if v == n})
        for (n,) in numbers
    ]


def _registered(number, aliases, tags: dict) -> RegisteredVersion:
    return RegisteredVersion(
        int(number), tuple(sorted(aliases)), tags.get("registration.decision"), tags.get("registration.reasons")
    )


def versions(tracking_uri: str, name: str) -> list[RegisteredVersion]:
    """The registered model's versions, newest first, with their aliases and registration decisions; [] if none."""
    if tracking_uri.startswith("sqlite:///"):
        found = _versions_from_sqlite(tracking_uri.removeprefix("sqlite:///"), name)
        if found is not None:
            return found
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    client = _mlflow_client(tracking_uri)
    try:
        aliases = client.get_registered_model(name).aliases
        found = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []
    held = [_registered(v.version, [a for a, n in aliases.items() if str(n) == str(v.version)], v.tags) for v in found]
    return sorted(held, key=lambda v: v.version, reverse=True)


def _names_from_sqlite(path: str) -> list[str] | None:
    if not Path(path).is_file():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            return [row[0] for row in db.execute("SELECT name FROM registered_models ORDER BY name")]
        except sqlite3.DatabaseError:
            return None  # another schema: let MLflow answer


def model_names(tracking_uri: str) -> list[str]:
    """The names of the store's registered models (for a message when params name one it does not hold)."""
    if tracking_uri.startswith("sqlite:///"):
        found = _names_from_sqlite(tracking_uri.removeprefix("sqlite:///"))
        if found is not None:
            return found
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        return sorted(m.name for m in _mlflow_client(tracking_uri).search_registered_models())
    except MlflowException:
        return []


def local_model(tracking_uri: str, model_uri: str) -> Path:
    """The version's files on local disk, downloaded the first time through MLflow.

    Kept by store, name, version and the version's identity: a store recreated at the same path starts
    its versions at 1 again, and its version 1 is another model.
    """
    name, version, identity = resolve(tracking_uri, model_uri)
    store = hashlib.sha256(tracking_uri.encode()).hexdigest()[:12]
    target = cache_root() / store / name / f"{version}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"
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
