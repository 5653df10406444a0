"""The training loop: AdamW, a schedule, clipping, early stopping, resumable checkpoints.

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

from sentipipe.config import TrainParams
from sentipipe.errors import ConfigError
from sentipipe.text.encoding import EncodedSplit
from sentipipe.training.batching import bucketed_batches, collate, iterate, padding_fraction
from sentipipe.training.distributed import DistInfo, all_reduce_sum, shard


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

    def scalars(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if k not in ("epoch", "layer_grad_norms")}

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
    padding_fraction: float
    stopped_early: bool


def class_weights(labels: np.ndarray, num_classes: int, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return torch.tensor(len(labels) / (num_classes * np.maximum(counts, 1)), dtype=torch.float32)


@torch.no_grad()
def evaluate_loss(model: nn.Module, split: EncodedSplit, batch_size: int, device: torch.device, amp_dtype):
    model.eval()
    loss_sum, correct = 0.0, 0
    for ids, lengths, labels in iterate(split, batch_size, shuffle=False):
        labels = labels.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(ids.to(device), lengths)
        loss_sum += nn.functional.cross_entropy(logits.float(), labels, reduction="sum").item()
        correct += (logits.argmax(-1) == labels).sum().item()
    n = max(len(split), 1)
    return loss_sum / n, correct / n


def _progress(total: int, epoch: int, enabled: bool):
    from tqdm import tqdm

    # Quiet when output is not a terminal (DVC logs, CI): per-epoch lines say enough there.
    return tqdm(total=total, desc=f"epoch {epoch}", leave=False, disable=not (enabled and sys.stderr.isatty()))


def _state_copy(model: nn.Module) -> dict:
    return copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})


def fit(
    model: nn.Module,
    train: EncodedSplit,
    val: EncodedSplit,
    params: TrainParams,
    device: torch.device,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    resume: dict | None = None,
    save_checkpoint: Callable[[dict], None] | None = None,
    dist: DistInfo | None = None,
) -> TrainResult:
    """Train for params.epochs or until patience runs out; return the best epoch's weights.

    `model` may be wrapped in DistributedDataParallel; checkpoints hold the bare module's weights.
    """
    dist = dist or DistInfo()
    bare = getattr(model, "module", model)
    rng = np.random.default_rng(params.seed)
    trainable = [(n, p) for n, p in bare.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([p for _, p in trainable], lr=params.lr, weight_decay=params.weight_decay)
    steps_per_epoch = max(1, len(shard(bucketed_batches(train.lengths, params.batch_size, False), dist)))
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
    weights = class_weights(train.labels, bare.spec.num_classes, params.class_weights)
    weights = weights.to(device) if weights is not None else None

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
        batches = shard(bucketed_batches(train.lengths, params.batch_size, True, rng), dist)
        with _progress(len(batches), epoch, dist.is_main) as bar:
            for index in batches:
                ids, lengths, labels = collate(train, index)
                ids, labels = ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits = model(ids, lengths)
                    loss = nn.functional.cross_entropy(logits.float(), labels, weight=weights)
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
                totals[0] += loss.item() * len(labels)
                totals[1] += (logits.argmax(-1) == labels).sum().item()
                totals[2] += len(labels)
                steps += 1
                bar.update(1)
        loss_sum, correct, seen = all_reduce_sum(totals, device, dist)
        val_loss, val_acc = evaluate_loss(model, val, params.batch_size * 4, device, amp_dtype)
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=loss_sum / max(seen, 1),
            train_accuracy=correct / max(seen, 1),
            val_loss=val_loss,
            val_accuracy=val_acc,
            lr=optimizer.param_groups[0]["lr"],
            grad_norm=global_norm_sum / max(steps, 1),
            seconds=time.perf_counter() - start,
            # root mean square over the epoch's steps, per parameter tensor: vanishing or
            # exploding gradients show up layer by layer
            layer_grad_norms={n: math.sqrt(v / max(steps, 1)) for n, v in grad_sq.items()},
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
    return TrainResult(
        best_state,
        best,
        history,
        padding_fraction(train, params.batch_size, shuffle=True, seed=params.seed),
        stopped_early,
    )
