"""Stage register: log the served predictor (evaluate's choices applied) as a pyfunc, register it by the policy.

The version's description is its model card (tasks/classifier/card.py), from the reports read here before
anything is registered; the lineage is the training run's, tagged when that run opened.
"""

from __future__ import annotations

from sentipipe import registry, tracking
from sentipipe.io import read_json, require, write_json
from sentipipe.tasks.classifier import card, pyfunc
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.paths import METRICS, REGISTRATION, SERVED, TRAIN_REPORT
from sentipipe.tasks.classifier.predictor import Predictor


def register(params: ClassifierConfig) -> dict:
    c = params.classifier
    require(SERVED, METRICS, TRAIN_REPORT)
    train_report, metrics = read_json(TRAIN_REPORT), read_json(METRICS)
    served = Predictor.load(SERVED)
    labels = served.labels
    reports = card.read(served.tokenizer.to_dict())
    with tracking.attach_run(params.tracking, c.experiment, TRAIN_REPORT) as run:
        info = pyfunc.log_model(SERVED, labels)
        trained = {"tags": run.data.tags, "params": run.data.params}
        decision = registry.register(
            info.model_uri,
            c.register,
            run.info.run_id,
            metrics,
            METRICS,
            train_report["device"],
            run.data.tags,
            card=lambda decided: card.render(reports, decided, params, trained, labels),
            model_description=card.model_description(params),
        )
    write_json(REGISTRATION, decision)
    print(registry.summary_line("register", decision, "classifier"))
    return decision
