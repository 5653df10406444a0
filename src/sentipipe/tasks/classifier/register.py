"""Stage register: log the whole predictor as a pyfunc and register it under the promotion policy."""

from __future__ import annotations

from sentipipe import registry, tracking
from sentipipe.io import read_json, require, write_json
from sentipipe.tasks.classifier import pyfunc
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.paths import METRICS, MODEL, REGISTRATION, TRAIN_REPORT, VOCAB


def register(params: ClassifierConfig) -> dict:
    c = params.classifier
    require(MODEL, METRICS, TRAIN_REPORT, VOCAB)
    train_report, metrics = read_json(TRAIN_REPORT), read_json(METRICS)
    labels = read_json(VOCAB)["labels"]
    with tracking.attach_run(params.tracking, c.experiment, TRAIN_REPORT) as run:
        info = pyfunc.log_model(MODEL, labels)
        decision = registry.register(
            info.model_uri, c.register, run.info.run_id, metrics, METRICS, train_report["device"], run.data.tags
        )
    write_json(REGISTRATION, decision)
    print(registry.summary_line("register", decision))
    return decision
