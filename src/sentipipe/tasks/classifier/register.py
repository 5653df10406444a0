"""Stage register: log the served predictor (evaluate's choices applied) as a pyfunc, register it by the policy."""

from __future__ import annotations

from sentipipe import registry, tracking
from sentipipe.io import read_json, require, write_json
from sentipipe.tasks.classifier import pyfunc
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.paths import METRICS, REGISTRATION, SERVED, TRAIN_REPORT
from sentipipe.tasks.classifier.predictor import Predictor


def register(params: ClassifierConfig) -> dict:
    c = params.classifier
    require(SERVED, METRICS, TRAIN_REPORT)
    train_report, metrics = read_json(TRAIN_REPORT), read_json(METRICS)
    labels = Predictor.load(SERVED).labels
    with tracking.attach_run(params.tracking, c.experiment, TRAIN_REPORT) as run:
        info = pyfunc.log_model(SERVED, labels)
        decision = registry.register(
            info.model_uri, c.register, run.info.run_id, metrics, METRICS, train_report["device"], run.data.tags
        )
    write_json(REGISTRATION, decision)
    print(registry.summary_line("register", decision, "classifier"))
    return decision
