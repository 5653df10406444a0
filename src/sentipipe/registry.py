"""The registry policy: every model gets a version; `champion` moves only to a better one.

A new version becomes champion when it passes the floor, was trained on CUDA
if `require_gpu` asks for that, and beats the current champion's metric by
more than `min_improvement`. A version that passes the floor but not the
other rules gets the alias `challenger`.

Only like is compared with like: a champion validated on other data (another
hash in `tracking.VALIDATION_TAG`, e.g. the pipeline pointed at a new corpus
under the same model name) has a metric that says nothing about the new one.
Then the new version takes the place if it passes its other gates (floor,
its own baseline on its own data, behaviour, device), and the reasons say
that the two were not compared: a user who points the pipeline at a new
corpus expects `sentipipe predict` to answer with the model of that corpus,
and the old champion stays one `set_registered_model_alias` away.

Decisions are serialised (a lock file beside a local store, a lease on a
tracking server's registry), so two registrations racing cannot leave a worse
model as champion, or two champions.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from filelock import FileLock
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from sentipipe.config import RegisterParams
from sentipipe.errors import SentipipeError
from sentipipe.refusal import after_registration
from sentipipe.tracking import VALIDATION_TAG

CHAMPION, CHALLENGER = "champion", "challenger"


CARD_ARTIFACT = "model_card.md"
# MLflow's SQL stores keep a version's description in VARCHAR(5000): PostgreSQL and MySQL refuse a longer one
# (SQLite ignores the length). Characters, which is what the column counts.
DESCRIPTION_LIMIT = 5000


def fit_description(card: str, run_id: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """The card as a version's description: whole when it fits, else its first sections and where the rest is."""
    if len(card) <= limit:
        return card
    footer = f"\n\n_The card goes on in `{CARD_ARTIFACT}`, an artifact of run `{run_id}`._"
    kept = ""
    for part in card.split("\n\n## "):
        candidate = part if not kept else f"{kept}\n\n## {part}"
        if len(candidate) + len(footer) > limit:
            break
        kept = candidate
    return (kept or card[: limit - len(footer)]) + footer


def metric_value(metrics: dict, name: str, source: str | Path = "the metrics") -> float:
    """`<split>_<key>` of a task's metrics file (`source` names it in the error)."""
    split, _, key = name.partition("_")
    try:
        return float(metrics[split][key])
    except KeyError:
        available = [f"{s}_{k}" for s in ("val", "test") for k in metrics.get(s, {})]
        raise SentipipeError(f"register.metric: {name!r} is not in {source}; one of {available}") from None


def better(new: float, old: float, params: RegisterParams) -> bool:
    if params.direction == "maximize":
        return new > old + params.min_improvement
    return new < old - params.min_improvement


def below(value: float, reference: float, params: RegisterParams) -> bool:
    """Strictly worse than the reference, in the metric's direction."""
    return value < reference if params.direction == "maximize" else value > reference


def passes_floor(value: float, params: RegisterParams) -> bool:
    if params.floor is None:
        return True
    return value >= params.floor if params.direction == "maximize" else value <= params.floor


@dataclass(frozen=True)
class Evidence:
    """What the evaluate stage measured beside the metric, for the gates that use it."""

    baseline: float | None = None  # the reference baseline's value of the same metric, same split
    baseline_name: str = "the baseline"
    behaviour: float | None = None  # the validation behavioural suite's overall pass rate (the test suite is reported)
    blended: bool = False  # the served model mixes the baseline's own probabilities in: it must beat it, not tie it


def evidence(metrics: dict, name: str) -> Evidence:
    split, _, key = name.partition("_")
    reference = metrics.get("baseline", {})
    value = reference.get(split, {}).get(key)
    return Evidence(
        baseline=float(value) if value is not None else None,
        baseline_name=reference.get("name", "the baseline"),
        behaviour=metrics.get("behaviour_validation", {}).get("overall"),
        blended=metrics.get("blend", {}).get("weight", 0) > 0 or bool(metrics.get("mixture", {}).get("used")),
    )


def decide(
    new: float,
    current: float | None,
    params: RegisterParams,
    device: str = "cpu",
    seen: Evidence | None = None,
    validation: str | None = None,
    champion_validation: str | None = None,
) -> tuple[bool, list[str]]:
    """Pure policy: (promote?, reasons).

    `validation` and `champion_validation` identify the data each was validated on (None: not recorded;
    a champion registered before the hash was recorded is compared as before, and the reasons say so).
    """
    seen = seen or Evidence()
    reasons, promote = [], True
    if params.beat_baseline and seen.baseline is not None and below(new, seen.baseline, params):
        promote = False
        reasons.append(
            f"{params.metric} {new:.4f} is worse than {seen.baseline_name}'s {seen.baseline:.4f} on the same split "
            "(register.beat_baseline)"
        )
    elif params.beat_baseline and seen.baseline is not None and seen.blended and not below(seen.baseline, new, params):
        # a blend's weight was chosen on this split among ten, and at its top weight it is mostly the baseline:
        # a tie says nothing of the network's part
        promote = False
        reasons.append(
            f"{params.metric} {new:.4f} ties {seen.baseline_name}'s {seen.baseline:.4f} on the same split, and the "
            "served model is blended with it: a blend must beat it (register.beat_baseline)"
        )
    floor = getattr(params, "behaviour_floor", None)
    if floor is not None and seen.behaviour is not None and seen.behaviour < floor:
        promote = False
        reasons.append(
            f"validation behavioural pass rate {seen.behaviour:.3f} is below register.behaviour_floor {floor}"
        )
    if not passes_floor(new, params):
        promote = False
        reasons.append(f"{params.metric} {new:.4f} misses the floor {params.floor}")
    if params.require_gpu and device == "cpu":
        promote = False
        reasons.append("trained on the CPU and register.require_gpu is true")
    if validation and champion_validation and validation != champion_validation:
        outcome = (
            "this version, which passed its other gates, replaces it"
            if promote
            else "the champion stays only because this version failed a gate above"
        )
        reasons.append(
            f"the champion was validated on other data (hash {champion_validation[:12]}, this version's "
            f"{validation[:12]}), so {params.metric} is not comparable and was not compared: {outcome}"
        )
        return promote, reasons
    if current is not None and validation and not champion_validation:
        reasons.append("the champion records no validation-data hash: compared as if validated on the same data")
    if current is None:
        reasons.append("no champion yet")
    elif better(new, current, params):
        reasons.append(
            f"{params.metric} {new:.4f} beats the champion's {current:.4f} by more than {params.min_improvement}"
        )
    else:
        promote = False
        reasons.append(
            f"{params.metric} {new:.4f} does not beat the champion's {current:.4f} "
            f"by more than {params.min_improvement}"
        )
    return promote, reasons


@contextmanager
def registry_lock(client: MlflowClient, tracking_uri: str, name: str, timeout: float = 120.0):
    """Serialise registration decisions: a file lock beside a local store, a lease on a server's registry."""
    path = None
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///")).parent
    elif tracking_uri.startswith("file:") or "://" not in tracking_uri:
        path = Path(tracking_uri.removeprefix("file://").removeprefix("file:"))
    if path is not None and path.is_dir():
        with FileLock(str(path / f".registry-{name}.lock"), timeout=timeout):
            yield
        return
    with _lease(client, name, timeout):
        yield


LEASE_TAG = "sentipipe.registration_lease"
LEASE_SECONDS = 60.0  # a holder that died frees the lease after this long
SETTLE_SECONDS = 1.0  # far longer than one tag read and write over HTTP


def _lease_holder(client: MlflowClient, name: str) -> str | None:
    """Who holds the lease, if anyone does and it has not expired."""
    value = client.get_registered_model(name).tags.get(LEASE_TAG, "")
    holder, _, expiry = value.partition(" ")
    try:
        return holder if holder and float(expiry) > time.time() else None
    except ValueError:
        return None


def _try_write_lease(client: MlflowClient, name: str, me: str) -> bool:
    """Write our id into the lease; False when a concurrent writer's insert won.

    A SQL-backed server inserts a new tag row without a compare-and-set, so two
    writers who both saw no tag race on the row's primary key: the loser gets a
    unique-constraint error (BAD_REQUEST), which means someone else holds it now.
    """
    try:
        client.set_registered_model_tag(name, LEASE_TAG, f"{me} {time.time() + LEASE_SECONDS}")
    except MlflowException:
        return False
    return True


@contextmanager
def _lease(client: MlflowClient, name: str, timeout: float):
    """Mutual exclusion through a tag on the registered model (Fischer's algorithm).

    A tracking server offers no compare-and-set, so: read the lease; if free,
    write our id, wait SETTLE_SECONDS, and hold it only if our id is still
    there. Two writers who both saw it free wrote within one HTTP round trip of
    each other, so after the wait both read the later write and one backs off.
    """
    me, deadline = uuid.uuid4().hex, time.monotonic() + timeout
    rng = random.Random(me)
    while True:
        if _lease_holder(client, name) is None and _try_write_lease(client, name, me):
            time.sleep(SETTLE_SECONDS)
            if _lease_holder(client, name) == me:
                break
        if time.monotonic() > deadline:
            raise SentipipeError(f"registry: another registration of {name!r} held the lock for over {timeout} s")
        time.sleep(0.2 + rng.random() * 0.3)
    try:
        yield
    finally:
        if _lease_holder(client, name) == me:
            client.delete_registered_model_tag(name, LEASE_TAG)


def _champion(client: MlflowClient, name: str, metric: str):
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    value = version.tags.get(metric)
    return version, (float(value) if value is not None else None)


def register(
    model_uri: str,
    params: RegisterParams,
    run_id: str,
    metrics: dict,
    metrics_path: str | Path,
    device: str,
    run_tags: dict,
    card: Callable[[dict], str] | None = None,
    model_description: str | None = None,
) -> dict:
    """Register a new version and apply the policy; the decision and its reasons go onto the version.

    The lineage comes from the training run's tags, read when that run opened (tracking.lineage_tags), not
    from the tree now. `card` renders the version's description (its model card, markdown) from the
    decision; `model_description` describes the registered model (its aliases and this policy).
    """
    client = MlflowClient()
    name = params.model_name
    value = metric_value(metrics, params.metric, metrics_path)
    seen = evidence(metrics, params.metric)
    key = params.metric.partition("_")[2]
    validation = run_tags.get(VALIDATION_TAG)
    tags = {
        # repr keeps full precision: the policy compares against these tags later.
        params.metric: repr(value),
        **{f"test_{k}": repr(float(metrics["test"][k])) for k in ("accuracy", key) if k in metrics.get("test", {})},
        "device": device,
        "run_id": run_id,
        "git.commit": run_tags.get("git.commit", "unknown"),
        "git.dirty": run_tags.get("git.dirty", "unknown"),
        **{k: v for k, v in run_tags.items() if k.startswith("data.md5.") or k == "git.dirty_files"},
        **({VALIDATION_TAG: validation} if validation else {}),
        # The experiment that registers the version holds its files: a training run restored from DVC's
        # run cache was tagged by an earlier experiment, which may never have been pushed.
        **({"dvc.exp_name": exp} if (exp := os.environ.get("DVC_EXP_NAME") or run_tags.get("dvc.exp_name")) else {}),
        **({f"baseline.{params.metric}": repr(seen.baseline)} if seen.baseline is not None else {}),
        **({"behaviour.overall": repr(seen.behaviour)} if seen.behaviour is not None else {}),
    }
    version = mlflow.register_model(model_uri, name, tags=tags).version
    with registry_lock(client, mlflow.get_tracking_uri(), name):
        current_version, current = _champion(client, name, params.metric)
        champion_validation = current_version.tags.get(VALIDATION_TAG) if current_version else None
        comparable = not (validation and champion_validation and validation != champion_validation)
        if current_version is not None and current is None and comparable:
            promote = False
            reasons = [f"the champion (version {current_version.version}) has no {params.metric} tag; kept"]
        else:
            promote, reasons = decide(value, current, params, device, seen, validation, champion_validation)
        decision = "champion" if promote else (CHALLENGER if passes_floor(value, params) else "rejected")
        champion_version = int(version) if promote else (int(current_version.version) if current_version else None)
        result = {
            "name": name,
            "version": int(version),
            "metric": params.metric,
            "direction": params.direction,
            "value": value,
            "device": device,
            "previous_champion": int(current_version.version) if current_version else None,
            "previous_value": current,
            "comparable": bool(comparable),
            "validation": validation,
            "previous_validation": champion_validation,
            "baseline_value": seen.baseline,
            "below_baseline": seen.baseline is not None and below(value, seen.baseline, params),
            "behaviour_overall": seen.behaviour,
            "promoted": promote,
            "decision": decision,
            "champion_version": champion_version,
            "reason": "; ".join(reasons),
            "run_id": run_id,
            "git_commit": tags["git.commit"],
            "git_dirty": tags["git.dirty"],
            "data": {k.removeprefix("data.md5."): v for k, v in tags.items() if k.startswith("data.md5.")},
        }
        # the card before the aliases: a version that moved an alias always has its card
        if card is not None:
            text = card(result)
            client.log_text(run_id, text, CARD_ARTIFACT)  # the whole card, whatever the store's column allows
            try:
                client.update_model_version(name, version, description=text)
            except MlflowException:  # a SQL store that enforces its 5,000-character column (PostgreSQL, MySQL)
                client.update_model_version(name, version, description=fit_description(text, run_id))
        if model_description is not None:
            client.update_registered_model(name, description=model_description)
        if promote:
            client.set_registered_model_alias(name, CHAMPION, version)
        elif decision == CHALLENGER:
            client.set_registered_model_alias(name, CHALLENGER, version)
        client.set_model_version_tag(name, version, "registration.decision", decision)
        client.set_model_version_tag(name, version, "registration.reasons", result["reason"])
    return result


def summary_line(stage: str, decision: dict, task: str) -> str:
    """What the register stage prints: the decision, and for a version kept from champion, how to use it anyway."""
    if decision["promoted"]:
        return f"{stage}: {decision['name']} version {decision['version']}; champion moved: {decision['reason']}"
    lines = [f"{stage}: {line}" if not line.startswith(" ") else line for line in after_registration(task, decision)]
    if decision.get("below_baseline"):
        lines.append(
            f"  WARNING: this model is worse than the reference baseline on {decision['metric']} "
            f"({decision['value']:.4f} against {decision['baseline_value']:.4f}): serve the baseline's kind of model "
            "for this corpus, or improve the model."
        )
    return "\n".join(lines)
