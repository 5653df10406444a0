"""A small seeded search on validation data (Optuna): its trials are MLflow child runs of the training run.

Trial 0 trains the params as written; the later trials draw values of the
search space (a list of values per train key) with Optuna's TPE sampler,
seeded, never a combination already tried. Every trial trains with the loop's
own budget and early stopping, and its score is its best evaluation of the
monitored validation figure. A median pruner stops a trial whose figure, after
a warm-up of `prune_after` passes over the training data, trails the median of
the earlier trials' at the same step. The best trial's weights are the run's
model: nothing is trained twice, and with `trials: 1` the run is exactly the
run without a search. `max_minutes` is a net on the search's wall time: no new
trial starts past it (recorded when it fires).

Test data plays no part: the objective is the validation figure that also stops
each trial, so the chosen trial's validation figures are not held out; test
figures (evaluate) are.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import mlflow
import numpy as np
import optuna
import torch
from torch import nn

from sentipipe.config import LoopParams
from sentipipe.training.loop import EvalMetrics, TrainResult, fit, seed_everything
from sentipipe.training.objectives import Objective

P = TypeVar("P", bound=LoopParams)
Builder = Callable[[Any], tuple[nn.Module, Objective]]


class _Pruned(Exception):
    """Raised from a trial's evaluation callback: the pruner stopped it."""


@dataclass
class TrialRecord:
    number: int
    values: dict[str, Any]
    state: str  # complete | pruned
    score: float | None  # the monitored figure's best evaluation (higher is better; -loss for val_loss)
    steps: int
    seconds: float
    run_id: str

    def row(self) -> dict:
        return {
            "trial": self.number,
            **self.values,
            "state": self.state,
            "score": self.score,
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "run_id": self.run_id,
        }


@dataclass
class SearchOutcome:
    model: nn.Module
    result: TrainResult
    params: Any  # the winning trial's train params
    chosen: dict[str, Any]
    trials: list[TrialRecord] = field(default_factory=list)
    stopped: str = ""  # "max_minutes" when the net stopped the search early

    def report(self, monitor: str, space: dict[str, list]) -> dict:
        best = max((t for t in self.trials if t.score is not None), key=lambda t: t.score)
        figure = best.score if monitor != "val_loss" else -best.score
        return {
            "monitor": monitor,
            "space": space,
            "chosen": self.chosen,
            "why": f"the best {monitor} ({figure:.4f}) of {len(self.trials)} trials, trial {best.number}",
            "stopped": self.stopped or "trials",
            "trials": [t.row() for t in self.trials],
        }


def choices(base: LoopParams, space: dict[str, list]) -> dict[str, list]:
    """Each key's values, the written one first (trial 0 trains the params as written)."""
    out = {}
    for key, values in space.items():
        written = getattr(base, key)
        out[key] = [written] + [v for v in values if v != written]
    return out


def combinations(options: dict[str, list]) -> int:
    return math.prod(len(v) for v in options.values())


def run_search(
    base: P,
    space: dict[str, list],
    trials: int,
    build: Builder,
    device: torch.device,
    seed: int,
    prune_after: float,
    max_minutes: float,
    steps_per_epoch: int,
    on_eval: Callable[[EvalMetrics], None] | None = None,
) -> SearchOutcome:
    """Train up to `trials` trials (at most one per combination); return the best with its model and record."""
    options = choices(base, space)
    trials = min(trials, combinations(options))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=1, n_warmup_steps=max(1, int(prune_after * steps_per_epoch)), interval_steps=1
    )
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner, study_name="search"
    )
    study.enqueue_trial({k: v[0] for k, v in options.items()})
    tried: set[tuple] = set()
    records: list[TrialRecord] = []
    best: tuple[float, nn.Module, TrainResult, Any] | None = None
    started, stopped = time.monotonic(), ""
    while len(records) < trials:
        if records and time.monotonic() - started >= max_minutes * 60:
            stopped = "max_minutes"
            break
        trial = study.ask()
        values = {k: trial.suggest_categorical(k, v) for k, v in options.items()}
        key = tuple(values[k] for k in options)
        if key in tried:  # TPE drew a combination already trained: take the first untried one instead
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            untried = [c for c in itertools.product(*options.values()) if c not in tried]
            study.enqueue_trial(dict(zip(options, untried[0])))
            continue
        tried.add(key)
        params = base.model_copy(update=values)
        seed_everything(params.seed)  # every trial starts from the same random state: trial 0 is the plain run
        model, objective = build(params)
        number = len(records)
        clock = time.perf_counter()
        parent = mlflow.active_run()
        experiment = parent.info.experiment_id if parent else None
        with mlflow.start_run(nested=True, run_name=f"trial-{number}", experiment_id=experiment) as child:
            mlflow.log_params({f"search.{k}": v for k, v in values.items()})
            mlflow.set_tags({"search.trial": str(number)})

            last = {"step": 0}

            def report(m: EvalMetrics, trial=trial, params=params, last=last) -> None:
                last["step"] = m.step
                mlflow.log_metrics({f"curve_{k}": v for k, v in m.scalars().items()}, step=m.step)
                if on_eval:
                    on_eval(m)
                trial.report(m.score(params.monitor), m.step)
                if trial.should_prune():
                    raise _Pruned

            try:
                result = fit(model, objective, params, device, report)
            except _Pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                record = TrialRecord(number, values, "pruned", None, last["step"], time.perf_counter() - clock, "")
                mlflow.set_tag("search.state", "pruned")
            else:
                score = result.best.score(params.monitor)
                study.tell(trial, score)
                record = TrialRecord(number, values, "complete", score, result.steps, time.perf_counter() - clock, "")
                mlflow.set_tag("search.state", "complete")
                mlflow.log_metric("search_score", score)
                if best is None or score > best[0]:
                    best = (score, model, result, params)
            record.run_id = child.info.run_id
        records.append(record)
        print(
            f"search: trial {number} {values}: {record.state}"
            + (f", best {params.monitor} {abs(record.score):.4f}" if record.score is not None else "")
            + f" ({record.steps} steps, {record.seconds:.0f} s)",
            flush=True,
        )
    assert best is not None  # trial 0 is never pruned (no earlier trial to compare with)
    _, model, result, params = best
    chosen = {k: getattr(params, k) for k in options}
    return SearchOutcome(model, result, params, chosen, records, stopped)


def steps_per_pass(objective: Objective, seed: int) -> int:
    """Steps in one pass over the training data (the first epoch's batches), as the loop counts them."""
    return max(len(objective.batches(np.random.default_rng(seed))), 1)
