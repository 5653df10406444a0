"""The registry's side of the policy and the cards, through a real SQLite MLflow store and the real stages.

- each version's description is its model card and the registered model's explains aliases and policy;
- a new corpus under an old model name is not compared with the old champion, and the reasons say so;
- git.dirty, read when the training run opens, is false on a fresh clone's run (which rewrites tracked
  reports) and true once params.yaml is edited; evaluate and register reuse it.
"""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from sentipipe.io import read_json
from sentipipe.stats import wilson_interval
from sentipipe.tasks.classifier import paths
from sentipipe.tasks.generator import paths as generator_paths
from tests.helpers import copy_repo, run_tiny_generator, run_tiny_pipeline, write_raw_corpus

pytestmark = pytest.mark.integration

NO_BASELINE_GATE = {"classifier": {"register": {"beat_baseline": False}}}


def test_each_version_carries_its_model_card_and_the_model_its_policy(tiny_workspace, mlflow_store):
    run_tiny_pipeline()
    metrics, prepare = read_json(paths.METRICS), read_json("reports/data/prepare.json")
    client = MlflowClient(mlflow_store)
    card = client.get_model_version("tiny-classifier", "1").description
    rows = prepare["splits"]["test"]["rows"]
    low, high = wilson_interval(round(metrics["test"]["accuracy"] * rows), rows)
    assert card.startswith("# tiny-classifier version 1: champion")
    assert f"| this model | test ({rows} rows) | {metrics['test']['accuracy']:.4f} | {low:.3f}–{high:.3f} |" in card
    assert f"T = {metrics['calibration']['temperature']:g}" in card
    assert f"| overall | {metrics['behaviour']['overall']:.3f} |" in card
    assert "## Intended use and limits" in card and "## Lineage" in card
    described = client.get_registered_model("tiny-classifier").description
    assert "## Aliases" in described and "`register.beat_baseline`" in described


def test_a_new_corpus_under_an_old_name_replaces_the_champion_without_a_comparison(tiny_workspace, mlflow_store):
    client = MlflowClient(mlflow_store)
    run_tiny_pipeline(NO_BASELINE_GATE)
    first = read_json(paths.REGISTRATION)
    assert first["promoted"] and first["validation"]
    barely = {"train": {"max_steps": 2, "lr": 1e-5}, "evaluate": {"blend": "off"}}  # served alone: no reference
    other_corpus = {**NO_BASELINE_GATE, "data": {"seed": 7}, "classifier": barely}
    other_corpus["classifier"]["register"] = NO_BASELINE_GATE["classifier"]["register"]
    run_tiny_pipeline(other_corpus)  # other validation rows, and barely trained: worse on any comparison
    second = read_json(paths.REGISTRATION)
    assert second["value"] < first["value"], "the test means something only if the metric alone would keep v1"
    assert second["promoted"] and not second["comparable"] and second["validation"] != first["validation"]
    assert "validated on other data" in second["reason"] and "not compared" in second["reason"]
    assert int(client.get_model_version_by_alias("tiny-classifier", "champion").version) == 2
    version = client.get_model_version("tiny-classifier", "2")
    assert "not comparable" in version.tags["registration.reasons"]
    assert "**not compared** with the champion's" in version.description
    assert version.tags["data.validation.md5"] == second["validation"]

    run_tiny_pipeline({**other_corpus, "classifier": {**other_corpus["classifier"], "train": {"max_steps": 96}}})
    third = read_json(paths.REGISTRATION)
    assert third["comparable"] and third["validation"] == second["validation"]
    assert third["promoted"] and "beats the champion's" in third["reason"], "the same rows: compared again"


def test_the_generators_version_carries_its_card(tiny_workspace, mlflow_store):
    run_tiny_generator()
    metrics = read_json(generator_paths.METRICS)
    card = MlflowClient(mlflow_store).get_model_version("tiny-generator", "1").description
    assert card.startswith("# tiny-generator version 1: champion")
    assert f"| this model | val | {metrics['val']['bpc']:.4f} |" in card
    assert f"| {metrics['baseline']['name']} | test | {metrics['baseline']['test']['bpc']:.4f} |" in card
    assert read_json(generator_paths.SAMPLES)[0]["text"][:40] in card


def test_a_fresh_clones_run_is_clean_and_an_edit_to_params_is_not(tmp_path, monkeypatch, mlflow_store):
    clone = tmp_path / "clone"
    clone.mkdir()
    copy_repo(clone)  # a fresh clone: everything committed, reports/** and dvc.lock tracked
    monkeypatch.chdir(clone)
    write_raw_corpus(clone)
    client = MlflowClient(mlflow_store)

    run_tiny_pipeline()  # rewrites tracked reports (prepare.json, tokens.json, metrics.json, ...)
    version = client.get_model_version("tiny-classifier", "1")
    assert version.tags["git.dirty"] == "false", version.tags.get("git.dirty_files")
    assert "with no edits to tracked code or params" in version.description

    # params edited after training: evaluate and register describe the training, so still clean
    with open("params.yaml", "a") as fh:
        fh.write("# an edit\n")
    run_tiny_pipeline(only=("evaluate", "register"))
    assert client.get_model_version("tiny-classifier", "2").tags["git.dirty"] == "false"

    run_tiny_pipeline(only=("train", "evaluate", "register"))  # trained with the edit
    version = client.get_model_version("tiny-classifier", "3")
    assert version.tags["git.dirty"] == "true" and version.tags["git.dirty_files"] == "params.yaml"
    assert read_json(paths.REGISTRATION)["git_dirty"] == "true"
    assert "with edits not in the commit: params.yaml" in version.description
