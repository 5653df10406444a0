"""The training loop: AdamW, a schedule, clipping, early stopping, resumable checkpoints.

The loop knows nothing of the task. An objective (training/objectives.py)
says what one epoch's batches are, what one step's loss is and how the model
scores on validation data; the classifier and the language model each bring
their own, and share everything here.

A checkpoint holds everything the next epoch depends on (weights, optimizer,
schedule, both random generators, the history and the best epoch so far), so
a run killed mid-training and resumed ends, on the CPU, with exactly the
metrics of an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sentipipe.config import LoopParams
from sentipipe.errors import ConfigError
from sentipipe.training.distributed import DistInfo, all_reduce_sum
from sentipipe.training.objectives import Objective


def resolve_device(name: str) -> torch.device:
    """`auto` finds CUDA when present; asking for CUDA on a host without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' was asked for but no CUDA device is available; use 'auto'")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def amp_dtype_for(device: torch.device, enabled: bool):
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def warmup_cosine(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    grad_norm: float
    seconds: float
    layer_grad_norms: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)  # the task's own validation figures

    def scalars(self) -> dict[str, float]:
        out = {k: v for k, v in asdict(self).items() if k not in ("epoch", "layer_grad_norms", "extra")}
        return {**out, **self.extra}

    def row(self) -> dict[str, float]:
        """One line of reports/plots/history.csv."""
        return {"epoch": self.epoch, **self.scalars()}

    def score(self, monitor: str) -> float:
        """Higher is better, whatever is monitored."""
        return self.val_accuracy if monitor == "val_accuracy" else -self.val_loss


@dataclass
class TrainResult:
    best_state: dict
    best: EpochMetrics
    history: list[EpochMetrics]
    stopped_early: bool


def _progress(total: int, epoch: int, enabled: bool):
    # Quiet when output is not a terminal (DVC logs, CI): per-epoch lines say enough there.
    return tqdm(total=total, desc=f"epoch {epoch}", leave=False, disable=not (enabled and sys.stderr.isatty()))


def _state_copy(model: nn.Module) -> dict:
    return copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})


def fit(
    model: nn.Module,
    objective: Objective,
    params: LoopParams,
    device: torch.device,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    resume: dict | None = None,
    save_checkpoint: Callable[[dict], None] | None = None,
    dist: DistInfo | None = None,
) -> TrainResult:
    """Train for params.epochs or until patience runs out; return the best epoch's weights.

    `objective` says what the task trains on (training/objectives.py). `model` may be wrapped in
    DistributedDataParallel; checkpoints hold the bare module's weights.
    """
    dist = dist or DistInfo()
    bare = getattr(model, "module", model)
    rng = np.random.default_rng(params.seed)
    trainable = [(n, p) for n, p in bare.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([p for _, p in trainable], lr=params.lr, weight_decay=params.weight_decay)
    steps_per_epoch = max(1, len(objective.shard(objective.batches(None), dist)))
    if params.schedule == "cosine":
        factor = warmup_cosine(steps_per_epoch * params.epochs, params.warmup_ratio)
        step_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        epoch_scheduler = None
    elif params.schedule == "plateau":
        step_scheduler = None
        epoch_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)
    else:
        step_scheduler = epoch_scheduler = None
    amp_dtype = amp_dtype_for(device, params.amp)
    scaler = torch.amp.GradScaler(enabled=amp_dtype == torch.float16)

    history: list[EpochMetrics] = []
    best: EpochMetrics | None = None
    best_state: dict = {}
    stale, start_epoch = 0, 1
    if resume is not None:
        bare.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        for sched, key in ((step_scheduler, "step_scheduler"), (epoch_scheduler, "epoch_scheduler")):
            if sched is not None:
                sched.load_state_dict(resume[key])
        scaler.load_state_dict(resume["scaler"])
        rng.bit_generator.state = resume["numpy_rng"]
        torch.set_rng_state(resume["torch_rng"])
        if device.type == "cuda" and resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        history = [EpochMetrics(**h) for h in resume["history"]]
        best = EpochMetrics(**resume["best"])
        best_state, stale, start_epoch = resume["best_state"], resume["stale"], resume["epoch"] + 1

    stopped_early = bool(resume and resume.get("stopped_early"))
    for epoch in range(start_epoch, params.epochs + 1):
        if stopped_early:
            break
        start = time.perf_counter()
        model.train()
        totals = [0.0, 0.0, 0.0]  # loss sum, correct, seen
        grad_sq: dict[str, float] = {n: 0.0 for n, _ in trainable}
        global_norm_sum, steps = 0.0, 0
        batches = objective.shard(objective.batches(rng), dist)
        objective.start_epoch()
        with _progress(len(batches), epoch, dist.is_main) as bar:
            for batch in batches:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    loss, correct, count = objective.step(model, batch, device)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                for name, p in trainable:
                    if p.grad is not None:
                        grad_sq[name] += float(p.grad.detach().norm()) ** 2
                global_norm_sum += float(nn.utils.clip_grad_norm_([p for _, p in trainable], params.clip_norm))
                scaler.step(optimizer)
                scaler.update()
                if step_scheduler is not None:
                    step_scheduler.step()
                totals[0] += loss.item() * count
                totals[1] += correct
                totals[2] += count
                steps += 1
                bar.update(1)
        loss_sum, correct, seen = all_reduce_sum(totals, device, dist)
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            val = objective.validate(model, device)
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=loss_sum / max(seen, 1),
            train_accuracy=correct / max(seen, 1),
            val_loss=val.pop("loss"),
            val_accuracy=val.pop("accuracy"),
            lr=optimizer.param_groups[0]["lr"],
            grad_norm=global_norm_sum / max(steps, 1),
            seconds=time.perf_counter() - start,
            # root mean square over the epoch's steps, per parameter tensor: vanishing or
            # exploding gradients show up layer by layer
            layer_grad_norms={n: math.sqrt(v / max(steps, 1)) for n, v in grad_sq.items()},
            extra={f"val_{k}": float(v) for k, v in val.items()},
        )
        history.append(metrics)
        if epoch_scheduler is not None:
            epoch_scheduler.step(metrics.score(params.monitor))
        if best is None or metrics.score(params.monitor) > best.score(params.monitor):
            best, stale, best_state = metrics, 0, _state_copy(bare)
        else:
            stale += 1
        stopped_early = bool(params.patience) and stale >= params.patience and epoch < params.epochs
        if on_epoch:
            on_epoch(metrics)
        if save_checkpoint is not None:
            save_checkpoint(
                {
                    "epoch": epoch,
                    "model": _state_copy(bare),
                    "optimizer": optimizer.state_dict(),
                    "step_scheduler": step_scheduler.state_dict() if step_scheduler else None,
                    "epoch_scheduler": epoch_scheduler.state_dict() if epoch_scheduler else None,
                    "scaler": scaler.state_dict(),
                    "numpy_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "history": [asdict(h) for h in history],
                    "best": asdict(best),
                    "best_state": best_state,
                    "stale": stale,
                    "stopped_early": stopped_early,
                }
            )
    assert best is not None
    return TrainResult(best_state, best, history, stopped_early)
