"""What a user is told when the registry gate keeps a version from `champion`: never a dead end.

A version the gate refused is still registered and usable by name. The message says why (the
reasons `registry.decide` recorded, with their figures), the exact command that uses the version
anyway, and the params key that would let the policy promote such a version. Light on purpose:
the register stages print it as they decide, and the CLI when a command finds no champion.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

# The rule a reason of registry.decide names, and the params.yaml setting under the task's section that lifts it.
POLICY_KEYS = (
    ("(register.beat_baseline)", "register.beat_baseline: false"),
    ("register.behaviour_floor", "register.behaviour_floor: null"),
    ("register.require_gpu is true", "register.require_gpu: false"),
    ("misses the floor", "register.floor: null"),
)
# What registers each task's model again under a changed policy (dvc reruns the register stage).
RERUN = {
    "classifier": "make run (or dvc repro)",
    "generator": "make generator (or dvc repro pipeline/generator/dvc.yaml)",
}
USE = {"classifier": "predict", "generator": "generate"}
EXAMPLE = {"predict": "a text to label", "generate": "a prompt"}
SHOWN_VERSIONS = 10


@dataclass(frozen=True)
class RegisteredVersion:
    """A version as the registry holds it, with the decision registry.register tagged it with."""

    version: int
    aliases: tuple[str, ...] = ()
    decision: str | None = None
    reasons: str | None = None


def command(verb: str, task: str, model_uri: str) -> str:
    """The exact command line that runs `verb` (predict, generate, serve) with the model at `model_uri`."""
    uri = shlex.quote(model_uri)
    if verb == "serve":
        return f"sentipipe serve --model-uri {uri}" + ("" if task == "classifier" else f" --task {task}")
    return f'sentipipe {verb} --model-uri {uri} "{EXAMPLE[verb]}"'


def policy_keys(reasons: str, task: str) -> list[str]:
    """The `<task>.register.<key>: <value>` settings that lift the rules the reasons name."""
    return [f"{task}.{setting}" for marker, setting in POLICY_KEYS if marker in reasons]


def _policy_line(reasons: str, task: str) -> str | None:
    keys = policy_keys(reasons, task)
    if keys:
        return f"or change the policy: set {' and '.join(keys)} in params.yaml, then {RERUN[task]}"
    if "does not beat the champion" in reasons:
        return "the champion scores at least as well; no policy key promotes a version that does not beat it"
    return None


def after_registration(task: str, decision: dict) -> list[str]:
    """What follows a registration the gate kept from champion: why, the figures, how to use it anyway.

    `decision` is registry.register's answer (the task's reports/<task>/registration.json).
    """
    name, version, metric = decision["name"], decision["version"], decision["metric"]
    uri = f"models:/{name}@challenger" if decision["decision"] == "challenger" else f"models:/{name}/{version}"
    figures = [f"this version {decision['value']:.4f}"]
    if decision.get("baseline_value") is not None:
        figures.append(f"the baseline {decision['baseline_value']:.4f}")
    champion, champion_value = decision.get("previous_champion"), decision.get("previous_value")
    if champion is None:
        figures.append("no champion yet")
    elif champion_value is not None:
        figures.append(f"the champion (version {champion}) {champion_value:.4f}")
    stays = f"the champion stays version {champion}" if champion is not None else "there is no champion"
    better = "higher" if decision.get("direction", "maximize") == "maximize" else "lower"
    lines = [
        f"{name} version {version} is registered as {decision['decision']}, not champion; {stays}",
        f"  why: {decision['reason']}",
        f"  figures ({metric}, {better} is better): {', '.join(figures)}",
        f"  use it anyway: {command(USE[task], task, uri)}",
        f"  serve it:      {command('serve', task, uri)}",
    ]
    if (policy := _policy_line(decision["reason"], task)) is not None:
        lines.append(f"  {policy}")
    return lines


def without_version(
    task: str,
    verb: str,
    model_uri: str,
    *,
    name: str,
    what: str,
    store: str,
    versions: Sequence[RegisteredVersion],
    names: Sequence[str],
) -> str:
    """The error for a model URI that names no version: which versions exist, why, and how to pick one.

    `name` is the registered model the URI names and `what` is what it lacks ("no version has alias
    'champion'"); `versions` are the registered
    model's, newest first; `names` are the store's registered models (shown when this one has none,
    in case params name another).
    """
    if not versions:
        lines = [
            f"cannot load {model_uri}: no model named {name!r} is registered in {store}",
            f"train and register one: {RERUN[task]}",
        ]
        if names:
            lines.append(
                f"this store holds {', '.join(names)}: set {task}.register.model_name in params.yaml "
                f"or pass --model-uri models:/NAME@champion"
            )
        return "\n".join(lines)
    lines = [f"cannot load {model_uri}: {what}", f"the versions of {name} in {store}, newest first:"]
    for v in versions[:SHOWN_VERSIONS]:
        aliases = f"alias {', '.join(v.aliases)}" if v.aliases else "no alias"
        why = f"registered as {v.decision}: {v.reasons}" if v.decision else "no registration decision recorded"
        lines.append(f"  version {v.version} ({aliases}); {why}")
    if len(versions) > SHOWN_VERSIONS:
        lines.append(f"  ... and {len(versions) - SHOWN_VERSIONS} older")
    aliases = sorted({a for v in versions for a in v.aliases})
    lines.append("to use one, name it:")
    lines += [f"  {command(verb, task, f'models:/{name}@{alias}')}" for alias in aliases]
    lines.append(f"  {command(verb, task, f'models:/{name}/{versions[0].version}')}")
    refused = next((v for v in versions if "challenger" in v.aliases), versions[0])
    if refused.reasons and (policy := _policy_line(refused.reasons, task)) is not None:
        lines.append(policy)
    return "\n".join(lines)
