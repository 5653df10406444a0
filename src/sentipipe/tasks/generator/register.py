"""Stage register (generator): log the generator as a pyfunc and register it under the promotion policy."""

from __future__ import annotations

from sentipipe import registry, tracking
from sentipipe.io import read_json, require, write_json
from sentipipe.tasks.generator import pyfunc
from sentipipe.tasks.generator.params import GeneratorConfig
from sentipipe.tasks.generator.paths import METRICS, MODEL, REGISTRATION, TRAIN_REPORT


def register(params: GeneratorConfig) -> dict:
    g = params.generator
    require(MODEL, METRICS, TRAIN_REPORT)
    train_report, metrics = read_json(TRAIN_REPORT), read_json(METRICS)
    with tracking.attach_run(params.tracking, g.experiment, TRAIN_REPORT) as run:
        info = pyfunc.log_model(MODEL, g.sample)
        decision = registry.register(
            info.model_uri, g.register, run.info.run_id, metrics, METRICS, train_report["device"], run.data.tags
        )
    write_json(REGISTRATION, decision)
    print(registry.summary_line("generator register", decision, "generator"))
    return decision
