"""Stage evaluate: score val and test (per source too), curves, confident errors, the TF-IDF reference.

Attaches to the MLflow run that train opened (its id is in the train report).
"""

from __future__ import annotations

import tempfile

import mlflow
import pandas as pd

from sentipipe import tracking
from sentipipe.data.paths import SPLITS, prepared
from sentipipe.io import atomic_write, require, write_csv, write_json
from sentipipe.tasks.classifier import evaluation as ev
from sentipipe.tasks.classifier.figures import save_figures
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.paths import (
    CALIBRATION,
    CONFUSION,
    ERRORS,
    METRICS,
    MODEL,
    PR,
    ROC,
    TRAIN_REPORT,
    tokens,
)
from sentipipe.tasks.classifier.predictor import Predictor
from sentipipe.text.encoding import load_split

HEADLINE = ("accuracy", "macro_f1", "roc_auc", "log_loss", "ece")


def evaluate(params: ClassifierConfig) -> dict:
    c = params.classifier
    require(MODEL, tokens("test"), tokens("val"), *(prepared(s) for s in SPLITS))
    predictor = Predictor.load(MODEL)
    classes = predictor.labels
    metrics: dict = {}
    for split in ("val", "test"):
        data = load_split(tokens(split))
        probs = predictor.predict_encoded(data, c.evaluate.batch_size)
        metrics[split] = ev.classification_metrics(data.labels, probs, classes)
    test_frame = pd.read_parquet(prepared("test"))
    metrics["test_by_source"] = ev.grouped_metrics(data.labels, probs, classes, test_frame["source"].astype(str))
    if c.evaluate.baseline:
        train_frame = pd.read_parquet(prepared("train"))
        metrics["baseline"] = {
            "tfidf_lr_test_accuracy": ev.tfidf_baseline(
                train_frame["text"], train_frame["label"], test_frame["text"], test_frame["label"]
            )
        }
    curves = ev.curve_rows(data.labels, probs, classes)
    write_csv(CONFUSION, ev.confusion_rows(data.labels, probs, classes))
    for path, rows in ((ROC, curves["roc"]), (PR, curves["pr"]), (CALIBRATION, curves["calibration"])):
        write_csv(path, rows)  # a test split with one class has no curve; DVC still needs the declared file
    errors = ev.confident_errors(test_frame["text"].tolist(), data.labels, probs, classes)
    atomic_write(ERRORS, lambda tmp: errors.to_csv(tmp, index=False))
    write_json(METRICS, metrics)
    with tracking.attach_run(params.tracking, c.experiment, TRAIN_REPORT):
        flat = {f"{split}_{k}": v for split in ("val", "test") for k, v in metrics[split].items()}
        for source, values in metrics["test_by_source"].items():
            flat.update({f"test_{source}_{k}": v for k, v in values.items() if k in ("accuracy", "macro_f1")})
        if "baseline" in metrics:
            flat["baseline_tfidf_lr_test_accuracy"] = metrics["baseline"]["tfidf_lr_test_accuracy"]
        mlflow.log_metrics({k: float(v) for k, v in flat.items()})
        mlflow.log_artifact(str(METRICS))
        mlflow.log_artifact(str(ERRORS), artifact_path="errors")
        with tempfile.TemporaryDirectory() as tmp:
            for path in save_figures(curves, ev.confusion(data.labels, probs, classes), classes, tmp):
                mlflow.log_artifact(str(path), artifact_path="plots")
    print(
        "evaluate: "
        + "; ".join(f"{s} " + ", ".join(f"{k} {metrics[s][k]:.4f}" for k in HEADLINE) for s in ("val", "test"))
    )
    if "baseline" in metrics:
        reference = metrics["baseline"]["tfidf_lr_test_accuracy"]
        print(f"evaluate: TF-IDF logistic regression on the same test split: {reference:.4f}")
    return metrics
