"""What the commands share: the params file's store, the model a command names, that version checked, and
the task's served model loaded from the local cache.

Light at import, as the command line is (`sentipipe --help` loads this module).
"""

from __future__ import annotations

import importlib

from sentipipe.errors import SentipipeError


def task_params(task: str, path: str):
    return importlib.import_module(f"sentipipe.tasks.{task}.params").load(path)


def named_model_uri(args, task: str) -> str:
    if args.model_uri:
        return args.model_uri
    params = task_params(task, args.params)
    return f"models:/{getattr(params, task).register.model_name}@champion"


def store_uri(args) -> str:
    """The project's store: MLFLOW_TRACKING_URI, else tracking.uri, else the repository's SQLite."""
    from sentipipe import config, tracking  # noqa: PLC0415

    return tracking.tracking_uri(config.load(args.params, config.TrackingConfig).tracking)


def checked_model(args, task: str) -> tuple[str, str]:
    """(store, model URI) once the URI is known to name a version.

    The one place where every command (predict, generate, serve) turns "no such version" into what
    to do: which versions exist, their aliases and registration reasons, and how to pick one.
    """
    from sentipipe import model_cache, refusal  # noqa: PLC0415

    tracking_uri, model_uri = store_uri(args), named_model_uri(args, task)
    try:
        model_cache.resolve(tracking_uri, model_uri)
    except model_cache.MissingVersion as missing:
        found = model_cache.versions(tracking_uri, missing.name)
        names = [] if found else model_cache.model_names(tracking_uri)
        verb = "serve" if args.command == "serve" else refusal.USE[task]
        message = refusal.without_version(
            task, verb, model_uri, name=missing.name, what=missing.what, store=tracking_uri, versions=found, names=names
        )
        raise SentipipeError(message) from None
    return tracking_uri, model_uri


def monitoring_params(args):
    """monitoring.* of the params file; with the log on, its address is checked before anything is served."""
    from sentipipe import config  # noqa: PLC0415

    params = config.load(args.params, config.MonitoringConfig).monitoring
    if params.enabled:
        from fsspec.core import url_to_fs  # noqa: PLC0415

        try:
            url_to_fs(params.log)
        except (ImportError, ValueError) as exc:  # s3:// without s3fs installed, an unknown protocol
            raise SentipipeError(f"monitoring.log={params.log!r} cannot be written: {exc}") from None
    return params


def served_identity(tracking_uri: str, model_uri: str) -> dict[str, str]:
    """The name, version and run id a log row records: what the URI meant when serving started."""
    from sentipipe import model_cache  # noqa: PLC0415

    name, version, identity = model_cache.resolve(tracking_uri, model_uri)
    return {"name": name, "version": version, "run_id": identity.split(":")[0]}


def served_folder(args, task: str):
    """The task's served model's folder in the local cache of registered versions (downloaded on first use),
    and the class that loads it."""
    from sentipipe import model_cache  # noqa: PLC0415

    folder = model_cache.local_model(*checked_model(args, task))
    if task == "generator":
        from sentipipe.tasks.generator.served import ServedGenerator as model_class  # noqa: PLC0415
    else:
        from sentipipe.tasks.classifier.served import ServedClassifier as model_class  # noqa: PLC0415
    return folder, model_class


def served_model(args, task: str):
    """The task's served model, from the local cache of registered versions (downloaded on first use)."""
    from sentipipe import model_cache  # noqa: PLC0415

    return model_cache.load_python_model(*served_folder(args, task))
