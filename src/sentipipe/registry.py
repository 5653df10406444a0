"""The registry policy: every model gets a version; `champion` moves only to a better one."""

from __future__ import annotations

from sentipipe.config import RegisterParams

CHAMPION = "champion"


def metric_value(metrics: dict, name: str) -> float:
    split, _, key = name.partition("_")
    return float(metrics[split][key])


def decide(new: float, current: float | None, min_improvement: float) -> tuple[bool, str]:
    """Pure policy: promote when there is no champion or the new value beats it by min_improvement."""
    if current is None:
        return True, "no champion yet"
    if new > current + min_improvement:
        return True, f"{new:.4f} beats the champion's {current:.4f} by more than {min_improvement}"
    return False, f"{new:.4f} does not beat the champion's {current:.4f} by more than {min_improvement}"


def register(model_uri: str, params: RegisterParams, run_id: str, metrics: dict, device: str, run_tags: dict) -> dict:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    name = params.model_name
    value = metric_value(metrics, params.metric)
    version = mlflow.register_model(model_uri, name, tags={"run_id": run_id}).version
    tags = {
        # repr keeps full precision: the policy compares against these tags later.
        params.metric: repr(value),
        "test_accuracy": repr(float(metrics["test"]["accuracy"])),
        "device": device,
        "git.commit": run_tags.get("git.commit", "unknown"),
        **{k: v for k, v in run_tags.items() if k.startswith("data.md5.")},
    }
    for key, tag in tags.items():
        client.set_model_version_tag(name, version, key, tag)
    current, current_version = None, None
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
        current_version = champion.version
        current = float(champion.tags[params.metric]) if params.metric in champion.tags else None
    except MlflowException:
        champion = None
    if champion is not None and current is None:
        promote, reason = False, f"the champion (version {current_version}) has no {params.metric} tag; not replaced"
    else:
        promote, reason = decide(value, current, params.min_improvement)
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "registration.decision", "champion" if promote else "not promoted")
    return {
        "name": name,
        "version": int(version),
        "metric": params.metric,
        "value": value,
        "previous_champion": int(current_version) if current_version else None,
        "previous_value": current,
        "promoted": promote,
        "champion_version": int(version) if promote else int(current_version),
        "reason": reason,
        "run_id": run_id,
    }
