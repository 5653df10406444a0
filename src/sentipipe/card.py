"""Model cards: the markdown the registry keeps for a registered model and for each version (the MLflow UI
renders it on their pages).

Task-free: the parts every card has (the registration decision, the lineage, the hashes) and the
registered model's description (its aliases and the promotion policy). A task's card module adds its
figures. Every figure comes from a file a stage wrote or a tag the run carries: none is typed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sentipipe.tracking import VALIDATION_TAG

if TYPE_CHECKING:
    from sentipipe.config import RegisterParams


def cell(value: object) -> str:
    """A value as one markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def count(value: int) -> str:
    return f"{value:,}"


def section(title: str, *parts: str) -> str:
    return "\n\n".join([f"## {title}", *(p for p in parts if p)])


def _short(digest: str | None) -> str:
    return f"`{digest[:12]}`" if digest else "not recorded"


def decision_section(decision: dict, use: str) -> str:
    """What the policy decided and why, and how to use this version whatever the aliases say."""
    name, version, metric = decision["name"], decision["version"], decision["metric"]
    rows = [
        ["this version", number(decision["value"]), _short(decision.get("validation"))],
    ]
    if decision.get("previous_champion") is not None:
        rows.append(
            [
                f"the champion before it (version {decision['previous_champion']})",
                number(decision.get("previous_value")),
                _short(decision.get("previous_validation")),
            ]
        )
    if decision.get("baseline_value") is not None:
        rows.append(["the task's reference baseline, same split", number(decision["baseline_value"]), "the same"])
    if decision.get("previous_champion") is None:
        compared = "no champion to compare with"
    elif decision.get("comparable", True):
        compared = "compared with the champion's"
    else:
        compared = "**not compared** with the champion's: it was validated on other data"
    reasons = "\n".join(f"- {r}" for r in decision["reason"].split("; ") if r)
    moved = "the champion moved to this version" if decision["promoted"] else "the champion did not move"
    return section(
        "Registration",
        f"Decision: **{decision['decision']}** ({moved}); {metric} ({decision['direction']}), {compared}.",
        table(["model", metric, "validation data (hash)"], rows),
        "Why:\n\n" + reasons,
        f"Use this version whatever its aliases (`models:/{name}/{version}`): `{use}`",
    )


def lineage_section(run_tags: dict) -> str:
    """The code, params and data the model was trained with: git, hashes, device and library versions."""
    dirty = run_tags.get("git.dirty", "unknown")
    edited = run_tags.get("git.dirty_files")
    code = f"git commit `{run_tags.get('git.commit', 'unknown')}`, " + (
        "with no edits to tracked code or params (outputs the pipeline writes do not count)"
        if dirty == "false"
        else f"with edits not in the commit: {edited}"
        if dirty == "true"
        else "edits unknown (no git repository)"
    )
    hashes = [
        [key.removeprefix(prefix), f"`{value}`", source]
        for prefix, source in (("data.md5.", "md5 when training began"), ("dvc.lock.", "dvc.lock"))
        for key, value in sorted(run_tags.items())
        if key.startswith(prefix)
    ]
    if run_tags.get(VALIDATION_TAG):
        hashes.append(["the validation data", f"`{run_tags[VALIDATION_TAG]}`", "what the registry compares"])
    versions = ", ".join(
        f"{k.removeprefix('versions.')} {v}" for k, v in sorted(run_tags.items()) if k.startswith("versions.")
    )
    facts = [
        f"- Code: {code} (git.dirty `{dirty}`, read when the training run opened).",
        f"- Trained on: {run_tags.get('device', 'unknown')}" + (f"; {versions}." if versions else "."),
    ]
    if run_tags.get("dvc.exp_name"):
        facts.append(f"- DVC experiment: `{run_tags['dvc.exp_name']}`.")
    return section("Lineage", "\n".join(facts), table(["input", "hash", "from"], hashes) if hashes else "")


def model_description(
    params: RegisterParams, what: str, commands: Sequence[str], extra_gates: Sequence[str] = ()
) -> str:
    """The registered model's description: what it is, what its aliases mean and the policy that moves them."""
    name = params.model_name
    better = "higher" if params.direction == "maximize" else "lower"
    gates = [
        f"its `{params.metric}` beats the champion's ({better} is better) by more than "
        f"`register.min_improvement` ({params.min_improvement}), when both were validated on the same data",
        f"it reaches `register.floor` ({params.floor})" if params.floor is not None else "",
        "it is not worse than the task's reference baseline on the same split (`register.beat_baseline`)"
        if params.beat_baseline
        else "",
        *extra_gates,
        "it was trained on a GPU (`register.require_gpu`)" if params.require_gpu else "",
    ]
    gates = [g for g in gates if g]
    return "\n\n".join(
        [
            f"# {name}",
            what,
            "## Aliases",
            "\n".join(
                [
                    f"- `champion`: the version that {', '.join(f'`{c}`' for c in commands)} and "
                    f"`models:/{name}@champion` use. It moves only "
                    "when the policy below says so.",
                    "- `challenger`: the latest version the policy kept from champion although it reached the floor; "
                    f"use it with `--model-uri models:/{name}@challenger`.",
                    "- a version with neither alias was rejected (below the floor) or was replaced. "
                    "Each version's tags `registration.decision` and `registration.reasons` say which and why, "
                    "and its description is its model card.",
                ]
            ),
            "## The promotion policy (`register` in params.yaml, as of the latest registration)",
            "A new version becomes champion when:\n\n" + "\n".join(f"- {g}" for g in gates),
            "A champion validated on other data (another hash of the validation rows, e.g. the pipeline "
            "pointed at a new corpus under the same model name) is not compared on the metric: the new version "
            "takes its place if it passes the other gates, and its reasons say so. To go back, move the alias: "
            f"`MlflowClient().set_registered_model_alias('{name}', 'champion', <version>)`.",
        ]
    )
