"""The stages after ingest, run for real on a tiny corpus against a real SQLite MLflow store."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from sentipipe.cli import main as cli_main
from sentipipe.errors import SentipipeError
from sentipipe.io import read_json
from sentipipe.runner import run
from sentipipe.tasks.classifier import params as classifier_params
from sentipipe.tasks.classifier import paths
from sentipipe.tasks.classifier.served import ServedClassifier
from sentipipe.tasks.classifier.train import train
from tests.helpers import assert_one_champion_after_a_race
from tests.helpers import run_tiny_pipeline as run_pipeline

pytestmark = pytest.mark.integration


def test_pipeline_trains_tracks_registers_and_serves_raw_text(tiny_workspace, mlflow_store):
    run_pipeline()
    train_report = read_json(paths.TRAIN_REPORT)
    metrics = read_json(paths.METRICS)
    registration = read_json(paths.REGISTRATION)
    assert metrics["test"]["accuracy"] >= 0.9, metrics
    assert registration["promoted"] and registration["version"] == 1

    client = MlflowClient(mlflow_store)
    run = client.get_run(train_report["run_id"])
    assert run.data.params["train.cell"] == "lstm"
    assert run.data.tags["device"] == "cpu"
    assert "git.commit" in run.data.tags and any(k.startswith("data.md5.") for k in run.data.tags)
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    history = client.get_metric_history(run.info.run_id, "curve_val_accuracy")
    assert [m.step for m in history] == list(range(8, 97, 8)), "an evaluation every 8 steps, 96 steps in all"
    assert run.data.metrics["best_step"] == train_report["best_step"]
    assert max(m.value for m in history) == pytest.approx(train_report["best_val_accuracy"])
    assert run.data.metrics["val_accuracy"] == pytest.approx(train_report["best_val_accuracy"])

    model = mlflow.pyfunc.load_model("models:/tiny-classifier@champion")
    texts = ["a brilliant and wonderful film", "a boring and awful film", ""]
    out = model.predict(pd.DataFrame({"text": texts}))
    assert out["label"].tolist()[:2] == ["positive", "negative"]
    assert list(out.columns) == ["label", "prob_negative", "prob_positive"]
    assert (out[["prob_negative", "prob_positive"]].sum(axis=1).round(5) == 1).all()
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"missing inputs \['text'\]"):
        model.predict(pd.DataFrame({"review": texts}))
    with pytest.raises(mlflow.exceptions.MlflowException, match="row 1: text must be a string, got float"):
        model.predict(pd.DataFrame({"text": ["fine", 2.5]}))

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {f"plots/{n}.png" for n in ("confusion", "roc", "pr", "calibration")}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "errors")] == ["errors/errors.csv"]
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confident_errors.html", "metrics.json", "behaviour"} <= top
    assert "no test errors" in paths.EXPLANATIONS.read_text(), "the tiny task has none to explain"
    baseline = metrics["baseline"]
    grid = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256)
    assert baseline["C"] in grid and 0 < baseline["test"]["accuracy"] <= 1
    assert set(baseline["val_accuracy_by_candidate"]) == {f"{c:g}" for c in grid}  # balanced classes: no weights
    assert baseline["tuned_on"] == "val_accuracy" and baseline["class_weight"] == "none"
    assert 0 <= metrics["versus_baseline"]["test_mcnemar"]["p_value"] <= 1
    assert metrics["calibration"]["temperature"] > 0 and "before" in metrics["calibration"]["val"]
    unseen = metrics["unseen_words"]  # auto: subwords unless they cost val accuracy beyond the tolerance
    with_, without = unseen["val_accuracy_subwords"], unseen["val_accuracy_unk"]  # and more than they gain on
    subwords = with_ >= without - 0.003 or (  # the validation behaviour cases
        unseen["val_behaviour_subwords"] - unseen["val_behaviour_unk"] > without - with_
    )
    assert ("val_behaviour_subwords" in unseen) == (with_ < without - 0.003)  # measured only when accuracy doubts
    assert unseen["chosen"] == ("subwords" if subwords else "unk") == metrics["serving"]["unseen_words"]
    assert run.data.metrics["served_subwords"] == float(unseen["chosen"] == "subwords")
    assert set(metrics["behaviour"]) >= {"negation_of_positive", "contrast", "typo", "overall"}
    assert set(metrics["behaviour_validation"]) == set(metrics["behaviour"])
    for key in ("behaviour_other_syntax", "behaviour_other_syntax_held_out"):  # verbs, idioms... (own blocks)
        assert set(metrics[key]) == {"verbs", "idioms", "double_negation", "other_domains", "overall"}, key
    assert run.data.metrics["behaviour_other_held_overall"] == metrics["behaviour_other_syntax_held_out"]["overall"]
    assert run.data.metrics["behaviour_val_overall"] == metrics["behaviour_validation"]["overall"]
    assert metrics["test_by_source"]["tiny"]["rows"] == 20
    # Training cut texts at tokenize's length; the served artifact reads what evaluate decided, and says so.
    from sentipipe.tasks.classifier.predictor import Predictor

    trained_length = read_json(paths.TOKENS_REPORT)["max_length"]
    assert Predictor.load(paths.MODEL).tokenizer.max_length == trained_length
    served_length = Predictor.load(paths.SERVED).tokenizer.max_length
    assert served_length == metrics["serving"]["max_length"] >= trained_length
    for plot in (paths.ROC, paths.PR, paths.CALIBRATION, paths.CONFUSION):
        assert plot.read_text().count("\n") > 1

    client_version = client.get_model_version("tiny-classifier", "1")
    assert client_version.tags["device"] == "cpu"
    assert float(client_version.tags["val_accuracy"]) == pytest.approx(metrics["val"]["accuracy"])


def test_the_served_model_explains_each_token_by_occlusion(tiny_workspace):
    from sentipipe.tasks.classifier.explain import explain, html_page
    from sentipipe.tasks.classifier.predictor import Predictor

    run_pipeline(only=("prepare", "tokenize", "embed", "teacher", "train", "evaluate"))
    served = Predictor.load(paths.SERVED)
    # int8 dynamic quantization scales activations per batch: a row's probability moves in the third
    # decimal with its batch-mates. The occlusion arithmetic is checked exactly in fp32.
    served = served.serving(served.temperature, False, served.subwords)
    (e,) = explain(served, ["a wonderful and moving film"])
    assert e["label"] == "positive" and e["tokens"] == ["a", "wonderful", "and", "moving", "film"]
    toward = e["contributions"]["positive"]
    assert len(toward) == 5 and toward == [-x for x in e["contributions"]["negative"]]
    top = e["tokens"][max(range(5), key=toward.__getitem__)]
    assert top in ("wonderful", "moving"), f"the strongest push towards positive came from {top!r}"
    without = served.predict_proba(["a and moving film"])[0, served.labels.index("positive")]
    assert toward[1] == pytest.approx(e["probability"] - without, abs=1e-4), "occlusion: the drop without the token"
    assert "wonderful</span>" in html_page("t", [{"explanation": e, "label": "positive"}])


def test_a_model_worse_than_its_own_baseline_is_registered_but_never_champion(tiny_workspace, mlflow_store, capsys):
    # barely trained, served alone (blended with the reference it would tie it: tests/integration/test_refusals.py)
    run_pipeline({"classifier": {"train": {"max_steps": 2, "lr": 1e-5}, "evaluate": {"blend": "off"}}})
    registration = read_json(paths.REGISTRATION)
    assert registration["below_baseline"] and not registration["promoted"]
    assert registration["decision"] == "challenger" and "register.beat_baseline" in registration["reason"]
    version = MlflowClient(mlflow_store).get_model_version("tiny-classifier", "1")
    assert version.aliases == ["challenger"] and "worse than TF-IDF" in version.tags["registration.reasons"]
    assert "WARNING: this model is worse than the reference baseline" in capsys.readouterr().out


def test_champion_never_moves_to_a_worse_model(tiny_workspace, mlflow_store):
    run_pipeline()
    first = read_json(paths.REGISTRATION)
    # barely trained, served alone: worse on validation
    run_pipeline({"classifier": {"train": {"max_steps": 8, "lr": 1e-5}, "evaluate": {"blend": "off"}}})
    second = read_json(paths.REGISTRATION)
    assert second["version"] == 2 and not second["promoted"]
    alias = MlflowClient(mlflow_store).get_model_version_by_alias("tiny-classifier", "champion")
    assert int(alias.version) == first["version"]


def test_same_seed_and_data_give_identical_metrics_on_cpu(tiny_workspace):
    run_pipeline({"classifier": {"train": {"max_steps": 24}}})
    first = read_json(paths.METRICS)
    run_pipeline({"classifier": {"train": {"max_steps": 24}}})
    assert read_json(paths.METRICS) == first


def test_cli_predict_prints_label_and_probabilities(tiny_workspace, capsys):
    run_pipeline()
    (tiny_workspace / "params.yaml").write_text("classifier:\n  register:\n    model_name: tiny-classifier\n")
    capsys.readouterr()  # drop the pipeline's own output
    assert cli_main(["predict", "a wonderful film", "an awful film"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("positive\t") and "prob" not in lines[0] and "negative=" in lines[0]
    assert lines[1].startswith("negative\t")
    assert cli_main(["predict", "--explain", "a wonderful film"]) == 0
    explained = capsys.readouterr().out.strip().split("\t")[-1]
    assert "wonderful(+" in explained, explained


def test_cli_predicts_a_file_in_chunks(tiny_workspace, capsys):
    run_pipeline()
    (tiny_workspace / "params.yaml").write_text("classifier:\n  register:\n    model_name: tiny-classifier\n")
    pd.DataFrame({"text": ["a wonderful film", "an awful film"] * 5}).to_parquet(tiny_workspace / "in.parquet")
    assert cli_main(["predict", "--input", "in.parquet", "--output", "out.csv", "--chunk-rows", "3"]) == 0
    out = pd.read_csv(tiny_workspace / "out.csv")
    assert out["label"].tolist() == ["positive", "negative"] * 5
    assert "wrote 10 predictions" in capsys.readouterr().out


def test_predict_follows_the_champion_alias_while_versions_stay_cached(tiny_workspace, mlflow_store):
    from sentipipe import model_cache

    run_pipeline()
    first = model_cache.local_model(mlflow_store, "models:/tiny-classifier@champion")
    assert first.name.startswith("1-") and (first / "MLmodel").is_file()
    assert model_cache.local_model(mlflow_store, "models:/tiny-classifier/1") == first
    run_pipeline({"classifier": {"train": {"max_steps": 8}}})  # version 2, not promoted
    assert model_cache.local_model(mlflow_store, "models:/tiny-classifier@champion") == first
    MlflowClient(mlflow_store).set_registered_model_alias("tiny-classifier", "champion", "2")
    second = model_cache.local_model(mlflow_store, "models:/tiny-classifier@champion")
    assert second.name.startswith("2-"), "the alias is asked of the store every time"
    served = model_cache.load_python_model(second, ServedClassifier)
    assert [r["label"] in ("positive", "negative") for r in served.predict_rows(["a wonderful film"], {})] == [True]

    # The registered model deleted and registered again (or the store recreated at the same path): its
    # version 1 is another model, not the cached one.
    MlflowClient(mlflow_store).delete_registered_model("tiny-classifier")
    run_pipeline()
    again = model_cache.local_model(mlflow_store, "models:/tiny-classifier@champion")
    assert again.name.startswith("1-") and again != first
    run_id = read_json(paths.REGISTRATION)["run_id"]
    assert yaml.safe_load((again / "MLmodel").read_text())["run_id"] == run_id
    with pytest.raises(SentipipeError, match="no version 7"):
        model_cache.local_model(mlflow_store, "models:/tiny-classifier/7")


def test_cli_without_a_champion_is_a_clear_error(tiny_workspace, capsys):
    (tiny_workspace / "params.yaml").write_text("classifier:\n  register:\n    model_name: nobody-registered-this\n")
    assert cli_main(["predict", "hello"]) == 1
    err = capsys.readouterr().err
    assert "cannot load models:/nobody-registered-this@champion" in err and "Traceback" not in err
    assert "no model named 'nobody-registered-this' is registered" in err
    assert "train and register one: make run (or dvc repro)" in err


def test_a_stage_with_missing_inputs_says_what_to_run(workdir, capsys):
    (workdir / "params.yaml").write_text("{}\n")
    assert run(train, classifier_params.load) == 1
    assert "run the earlier stages first" in capsys.readouterr().err


def test_a_stage_with_bad_params_fails_at_load_naming_the_key(workdir, capsys):
    (workdir / "params.yaml").write_text("classifier:\n  train:\n    cell: transformer\n    hidden_size: -1\n")
    assert run(train, classifier_params.load) == 1
    err = capsys.readouterr().err
    assert err.startswith("sentipipe classifier train: error:")
    assert "classifier.train.cell: 'transformer' is not allowed" in err and "classifier.train.hidden_size: -1" in err
    assert "Traceback" not in err and not (workdir / "models").exists()


def test_two_racing_registrations_never_both_become_champion(tiny_workspace, mlflow_store):
    run_pipeline()
    model_uri = f"runs:/{read_json(paths.TRAIN_REPORT)['run_id']}/model"
    assert_one_champion_after_a_race(mlflow_store, model_uri)
