"""Stage register (generator): log the served generator as a pyfunc and register it under the promotion policy.

What is logged is models/generator/served.pt, the file evaluate scored (the network, with the n-gram mixed in
when evaluate chose it), so the metric the policy compares is the served model's own.

The version's description is its model card (tasks/generator/card.py), from the reports read here first.
"""

from __future__ import annotations

from sentipipe import registry, tracking
from sentipipe.io import read_json, require, write_json
from sentipipe.tasks.generator import card, pyfunc
from sentipipe.tasks.generator.params import GeneratorConfig
from sentipipe.tasks.generator.paths import METRICS, REGISTRATION, SERVED, TRAIN_REPORT


def register(params: GeneratorConfig) -> dict:
    g = params.generator
    require(SERVED, METRICS, TRAIN_REPORT)
    train_report, metrics = read_json(TRAIN_REPORT), read_json(METRICS)
    reports = card.read()
    with tracking.attach_run(params.tracking, g.experiment, TRAIN_REPORT) as run:
        info = pyfunc.log_model(SERVED, g.sample)  # the model evaluate scored: val_bpc is its own
        trained = {"tags": run.data.tags, "params": run.data.params}
        decision = registry.register(
            info.model_uri,
            g.register,
            run.info.run_id,
            metrics,
            METRICS,
            train_report["device"],
            run.data.tags,
            card=lambda decided: card.render(reports, decided, params, trained),
            model_description=card.model_description(params),
        )
    write_json(REGISTRATION, decision)
    print(registry.summary_line("generator register", decision, "generator"))
    return decision
