"""The training loop: AdamW, warm-up then cosine decay, clipping, best-epoch weights."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from sentipipe.config import TrainParams
from sentipipe.models.rnn import RNNClassifier
from sentipipe.text.encoding import EncodedSplit
from sentipipe.training.batching import iterate, padding_fraction


def resolve_device(name: str) -> torch.device:
    """`auto` finds CUDA when present; asking for CUDA on a host without it is an error."""
    from sentipipe.errors import ConfigError

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
    torch.use_deterministic_algorithms(True, warn_only=True)


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
    seconds: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TrainResult:
    best_state: dict
    best: EpochMetrics
    history: list[EpochMetrics] = field(default_factory=list)
    padding_fraction: float = 0.0
    stopped_early: bool = False


@torch.no_grad()
def evaluate_loss(
    model: RNNClassifier, split: EncodedSplit, batch_size: int, device: torch.device, amp_dtype
) -> tuple[float, float]:
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


def amp_dtype_for(device: torch.device, enabled: bool):
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def fit(
    model: RNNClassifier,
    train: EncodedSplit,
    val: EncodedSplit,
    params: TrainParams,
    device: torch.device,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> TrainResult:
    """Train for params.epochs (or until patience runs out); keep the best validation epoch."""
    model.to(device)
    rng = np.random.default_rng(params.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=params.weight_decay)
    steps_per_epoch = math.ceil(len(train) / params.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps_per_epoch * params.epochs, params.warmup_ratio)
    )
    amp_dtype = amp_dtype_for(device, params.amp)
    scaler = torch.amp.GradScaler(enabled=amp_dtype == torch.float16)
    history: list[EpochMetrics] = []
    best: EpochMetrics | None = None
    best_state: dict = {}
    stale = 0
    for epoch in range(1, params.epochs + 1):
        start = time.perf_counter()
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for ids, lengths, labels in iterate(train, params.batch_size, shuffle=True, rng=rng):
            ids, labels = ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(ids, lengths)
                loss = nn.functional.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(trainable, params.clip_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(-1) == labels).sum().item()
            seen += len(labels)
        val_loss, val_acc = evaluate_loss(model, val, params.batch_size * 4, device, amp_dtype)
        metrics = EpochMetrics(
            epoch,
            loss_sum / seen,
            correct / seen,
            val_loss,
            val_acc,
            optimizer.param_groups[0]["lr"],
            time.perf_counter() - start,
        )
        history.append(metrics)
        if on_epoch:
            on_epoch(metrics)
        if best is None or val_acc > best.val_accuracy:
            best, stale = metrics, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            stale += 1
            if params.patience and stale >= params.patience:
                break
    assert best is not None
    return TrainResult(
        best_state,
        best,
        history,
        padding_fraction(train, params.batch_size, shuffle=True, seed=params.seed),
        stopped_early=len(history) < params.epochs,
    )
