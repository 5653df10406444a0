"""One tracked training run, whatever the task: MLflow run, lineage, resumable checkpoints, outputs.

A task's train stage builds its network and objective, describes its files in
a `TrainJob`, and calls `run_training`; everything else is here, so both tasks
log, checkpoint and resume the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import mlflow.data
import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sentipipe import tracking
from sentipipe.config import LoopParams, TrackingParams
from sentipipe.io import write_csv, write_json
from sentipipe.training import checkpoints
from sentipipe.training.device import amp_dtype_for, device_name, resolve_device, set_deterministic
from sentipipe.training.distributed import DistInfo, barrier, gather_digests, init_from_env, shutdown
from sentipipe.training.loop import EvalMetrics, fit, seed_everything
from sentipipe.training.objectives import Objective
from sentipipe.training.search import SearchOutcome


@dataclass
class TrainJob:
    """What differs between the tasks' train stages; `run_training` does the rest."""

    loop: LoopParams
    tracking: TrackingParams
    experiment: str
    logged_params: dict[str, str]
    inputs: dict[str, Path]  # MLflow dataset context -> file, e.g. {"training": ..., "validation": ...}
    lineage: list[Path]  # every input whose md5 goes into the tags
    checkpoint: Path
    report: Path
    history: Path
    save_model: Callable[[nn.Module], None]  # writes the best weights as the task's model file
    tags: dict[str, str] = field(default_factory=dict)  # the task's own tags on the run (a teacher's run id)
    # a search on validation data, run inside this run (its trials are child runs); its best trial is the model
    search: Callable[[Callable[[EvalMetrics], None]], SearchOutcome] | None = None
    search_space: dict = field(default_factory=dict)


def device_and_dist(p: LoopParams) -> tuple[torch.device, DistInfo]:
    """The device (found, not configured) and this process's place under torchrun; seeds and threads set."""
    device = resolve_device(p.device)
    dist = init_from_env(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    if p.threads:
        torch.set_num_threads(p.threads)
    set_deterministic(p.deterministic)
    seed_everything(p.seed)
    return device, dist


def wrap(model: nn.Module, device: torch.device, dist: DistInfo) -> nn.Module:
    if dist.enabled:
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def log_datasets(paths: dict[str, Path], tags: dict[str, str]) -> None:
    """The arrays trained on, as MLflow dataset inputs (a token store's `labels` become the targets)."""
    for context, path in paths.items():
        if path.is_dir():  # a token store: a folder of .npy arrays, memory-mapped
            arrays = {f.stem: np.load(f, mmap_mode="r") for f in sorted(path.glob("*.npy"))}
        else:
            arrays = {"ids": np.load(path)}
        targets = arrays.pop("labels", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = mlflow.data.from_numpy(
                arrays,
                targets=targets,
                source=str(path.resolve()),
                name=path.stem,
                digest=tags[f"data.md5.{path.as_posix()}"][:8],
            )
        mlflow.log_input(dataset, context=context)


def _print_eval(m: EvalMetrics) -> None:
    extra = "".join(f" {k.removeprefix('val_')} {v:.4f}" for k, v in m.extra.items())
    print(
        f"step {m.step} (epoch {m.epoch:.1f}): train loss {m.train_loss:.4f} acc {m.train_accuracy:.4f} | "
        f"val loss {m.val_loss:.4f} acc {m.val_accuracy:.4f}{extra} | grad norm {m.grad_norm:.3f} | "
        f"{m.seconds:.1f}s",
        flush=True,
    )


def run_training(
    job: TrainJob,
    model: nn.Module,
    objective: Objective,
    device: torch.device,
    dist: DistInfo,
    fresh: bool,
    extra_summary: dict | None = None,
) -> dict:
    """Fit in one MLflow run, resuming a matching checkpoint; rank 0 alone logs and writes."""
    p = job.loop
    tags = tracking.lineage_tags(job.lineage, device_name(device))
    tags["distributed.world_size"] = str(dist.world_size)
    tags.update(job.tags)
    data_tags = {k: v for k, v in tags.items() if k.startswith("data.md5.")}
    expected = checkpoints.fingerprint(p.model_dump(), data_tags)
    # a search is not resumed: a killed search starts again (each trial is minutes, its record is the child runs)
    resume = checkpoints.load(job.checkpoint, expected, fresh or job.search is not None)
    history_rows: list[dict] = []

    def log_curve(m: EvalMetrics) -> None:
        # The curves get their own names: the unprefixed val_* metrics are the best
        # evaluation's (logged by evaluate), never the last one's.
        scalars = {f"curve_{k}": v for k, v in m.scalars().items()}
        scalars.update({f"grad_norm.{k}": v for k, v in m.layer_grad_norms.items()})
        mlflow.log_metrics(scalars, step=m.step)

    def record(m: EvalMetrics) -> None:
        history_rows.append(m.row())
        log_curve(m)

    def on_eval(m: EvalMetrics) -> None:
        record(m)
        _print_eval(m)

    latest: dict = dict(resume or {})

    def checkpoint(state: dict) -> None:
        latest.update(state, fingerprint=expected, run_id=run_id, complete=False)
        checkpoints.save(job.checkpoint, latest)

    if not dist.is_main:  # other ranks train their shard and write nothing
        fit(model, objective, p, device, resume=resume, dist=dist)
        gather_digests(getattr(model, "module", model), dist)
        barrier(dist)
        shutdown(dist)
        return {}

    experiment_id = tracking.configure(job.tracking, job.experiment)
    run_id = resume["run_id"] if resume else None
    if run_id and not tracking.run_exists(run_id):
        resume, run_id = None, None  # the store changed under the checkpoint: train afresh
    with mlflow.start_run(run_id=run_id, experiment_id=None if run_id else experiment_id) as run:
        run_id = run.info.run_id
        if resume is None:
            mlflow.set_tags({**tags, "train.amp_dtype": str(amp_dtype_for(device, p.amp)).removeprefix("torch.")})
            mlflow.log_params(job.logged_params)
            log_datasets(job.inputs, tags)
        else:
            history_rows.extend(EvalMetrics(**h).row() for h in resume["history"])
            # the loop checkpoints an evaluation before logging it: one killed between the two is logged now, once
            logged = {m.step for m in mlflow.MlflowClient().get_metric_history(run_id, "curve_val_loss")}
            for h in resume["history"]:
                if h["step"] not in logged:
                    log_curve(EvalMetrics(**h))
            print(f"train: resuming run {run_id} after step {resume['step']} from {job.checkpoint}", flush=True)
        searched = None
        if job.search is not None:
            searched = job.search(_print_eval)
            model, result, p = searched.model, searched.result, searched.params
            for m in result.history:  # the chosen trial's curve on the run itself
                record(m)
            mlflow.log_params({f"search.chosen.{k}": v for k, v in searched.chosen.items()})
            mlflow.set_tag("search.why", searched.report(p.monitor, job.search_space)["why"])
        else:
            result = fit(model, objective, p, device, on_eval, resume, checkpoint, dist)
        bare = getattr(model, "module", model)
        digests = gather_digests(bare, dist)  # the last step's weights on every rank, before the best are loaded
        bare.load_state_dict(result.best_state)
        job.save_model(bare)
        train_seconds = sum(h.seconds for h in result.history)
        summary = {
            "best_step": result.best.step,
            "best_epoch": result.best.epoch,
            "best_val_accuracy": result.best.val_accuracy,
            "best_val_loss": result.best.val_loss,
            **{f"best_{k}": v for k, v in result.best.extra.items()},
            "steps_run": result.steps,
            "epochs_run": result.history[-1].epoch,
            "evaluations": len(result.history),
            "eval_every_used": result.eval_every,
            **(extra_summary or {}),
            "train_seconds": round(train_seconds, 1),
            "seconds_per_100_steps": round(100 * train_seconds / max(result.steps, 1), 2),
        }
        mlflow.log_metrics({k: float(v) for k, v in summary.items()})
        mlflow.set_tag("train.stop_reason", result.stop_reason)
        if dist.enabled:
            mlflow.set_tag("distributed.weights_identical", str(len(set(digests)) == 1).lower())
        budget = {k: getattr(p, k) for k in ("max_epochs", "max_steps", "eval_every", "patience", "max_minutes")}
        budget["eval_every_used"] = result.eval_every  # one epoch's steps when an epoch is shorter
        budget["steps_per_epoch"] = result.steps_per_epoch
        budget["budget_steps"] = result.budget  # max_epochs passes, capped by max_steps
        report = {
            "run_id": run_id,
            "experiment_id": run.info.experiment_id,
            "device": tags["device"],
            "stop_reason": result.stop_reason,
            "budget": budget,
            **summary,
        }
        if searched is not None:
            report["search"] = searched.report(p.monitor, job.search_space)
        report["rank_weight_digests"] = digests
    print(
        f"train: stopped after {result.steps} of {result.budget} steps ({result.stop_reason}; "
        f"{result.steps_per_epoch} steps a pass); the best evaluation, kept, "
        f"was at step {result.best.step} (epoch {result.best.epoch:.1f})",
        flush=True,
    )
    checkpoints.save(job.checkpoint, {**latest, "complete": True})  # a forced rerun starts afresh, not from the end
    write_csv(job.history, history_rows)
    write_json(job.report, report)
    barrier(dist)
    shutdown(dist)
    return report
