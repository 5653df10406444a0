"""A refusal of the registry gate says what to do: the setting it prints, applied, lets the gate promote."""

from __future__ import annotations

import pytest
import yaml

from sentipipe.refusal import RegisteredVersion, after_registration, command, policy_keys, without_version
from sentipipe.registry import Evidence, decide
from sentipipe.tasks.classifier.params import ClassifierRegisterParams

SCENARIOS = {
    "beat_baseline": ({}, {"seen": Evidence(baseline=0.8, baseline_name="TF-IDF LR")}),
    "behaviour_floor": ({"behaviour_floor": 0.9}, {"seen": Evidence(behaviour=0.5)}),
    "require_gpu": ({"require_gpu": True}, {"device": "cpu"}),
    "floor": ({"floor": 0.9}, {}),
}


@pytest.mark.parametrize("rule", SCENARIOS)
def test_the_printed_setting_applied_to_params_lets_the_gate_promote(rule):
    policy, context = SCENARIOS[rule]
    promote, reasons = decide(0.6, None, ClassifierRegisterParams(**policy), **context)
    assert not promote
    (setting,) = policy_keys("; ".join(reasons), "classifier")
    path, value = setting.split(": ")
    assert path == f"classifier.register.{rule}"
    changed = ClassifierRegisterParams(**{**policy, rule: yaml.safe_load(value)})
    assert decide(0.6, None, changed, **context)[0], f"{setting} did not lift the refusal"


def test_a_version_that_does_not_beat_the_champion_names_no_setting():
    reasons = "; ".join(decide(0.7, 0.8, ClassifierRegisterParams())[1])
    assert policy_keys(reasons, "classifier") == []
    lines = after_registration("classifier", decision(reason=reasons, previous_champion=3, previous_value=0.8))
    assert "the champion stays version 3" in lines[0]
    assert "the champion (version 3) 0.8000" in lines[2]
    assert "no policy key promotes a version that does not beat it" in lines[-1]


def decision(**changes) -> dict:
    """registry.register's answer, as reports/<task>/registration.json holds it."""
    base = {
        "name": "m",
        "version": 4,
        "metric": "val_accuracy",
        "direction": "maximize",
        "value": 0.6,
        "previous_champion": None,
        "previous_value": None,
        "baseline_value": 0.8,
        "promoted": False,
        "decision": "challenger",
        "reason": "val_accuracy 0.6000 is worse than TF-IDF LR's 0.8000 on the same split (register.beat_baseline)",
    }
    return {**base, **changes}


def test_after_a_refused_registration_the_reason_figures_and_commands_follow():
    lines = after_registration("classifier", decision())
    assert lines[0] == "m version 4 is registered as challenger, not champion; there is no champion"
    assert "figures (val_accuracy, higher is better): this version 0.6000, the baseline 0.8000" in lines[2]
    assert 'sentipipe predict --model-uri models:/m@challenger "a text to label"' in lines[3]
    assert "sentipipe serve --model-uri models:/m@challenger" in lines[4]
    assert "set classifier.register.beat_baseline: false in params.yaml, then make run" in lines[5]


def test_a_version_below_the_floor_has_no_alias_so_it_is_named_by_number():
    lines = after_registration(
        "generator",
        decision(decision="rejected", metric="val_bpc", direction="minimize", reason="val_bpc 3.0 misses the floor 2"),
    )
    assert "lower is better" in lines[2]
    assert 'sentipipe generate --model-uri models:/m/4 "a prompt"' in lines[3]
    assert lines[4].endswith("sentipipe serve --model-uri models:/m/4 --task generator")
    assert "generator.register.floor: null" in lines[5] and "make generator" in lines[5]


def test_without_a_champion_the_versions_their_aliases_and_reasons_are_listed():
    versions = [
        RegisteredVersion(2, ("challenger",), "challenger", "trained on the CPU and register.require_gpu is true"),
        RegisteredVersion(1),
    ]
    text = without_version(
        "classifier",
        "serve",
        "models:/m@champion",
        name="m",
        what="no version has alias 'champion'",
        store="sqlite:///s.db",
        versions=versions,
        names=[],
    )
    assert text.splitlines() == [
        "cannot load models:/m@champion: no version has alias 'champion'",
        "the versions of m in sqlite:///s.db, newest first:",
        "  version 2 (alias challenger); registered as challenger: trained on the CPU and register.require_gpu is true",
        "  version 1 (no alias); no registration decision recorded",
        "to use one, name it:",
        "  sentipipe serve --model-uri models:/m@challenger",
        "  sentipipe serve --model-uri models:/m/2",
        "or change the policy: set classifier.register.require_gpu: false in params.yaml, then make run (or dvc repro)",
    ]


def test_without_any_version_the_pipeline_to_run_is_named():
    text = without_version(
        "generator",
        "generate",
        "models:/g@champion",
        name="g",
        what="",
        store="sqlite:///s.db",
        versions=[],
        names=["other"],
    )
    assert "no model named 'g' is registered in sqlite:///s.db" in text
    assert "make generator" in text and "this store holds other" in text


def test_commands_quote_what_a_shell_would_split():
    assert command("predict", "classifier", "models:/a b@x") == (
        "sentipipe predict --model-uri 'models:/a b@x' \"a text to label\""
    )
