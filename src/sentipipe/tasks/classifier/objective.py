"""The classifier's training objective: one label per sequence, cross-entropy on the pooled output."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sentipipe.text.batching import bucketed_batches, collate, iterate
from sentipipe.text.encoding import EncodedSplit, release
from sentipipe.training.device import to_device
from sentipipe.training.distributed import DistInfo, shard


def confusion_figures(confusion: np.ndarray) -> dict[str, float]:
    """Accuracy, recall averaged over the classes present, macro-F1: from a truth x predicted count matrix."""
    truth, predicted, hits = confusion.sum(1), confusion.sum(0), np.diag(confusion)
    present = truth > 0
    recall = hits[present] / truth[present]
    f1 = 2 * hits[present] / np.maximum(truth[present] + predicted[present], 1)
    return {
        "accuracy": float(hits.sum() / max(confusion.sum(), 1)),
        "macro_recall": float(recall.mean()) if present.any() else 0.0,
        "macro_f1": float(f1.mean()) if present.any() else 0.0,
    }


def class_weights(labels: np.ndarray, num_classes: int, mode: str) -> torch.Tensor | None:
    """Balanced: each class weighted by its rarity among the labelled rows (a distilled student's variants are
    labelled -1, the teacher's logits their only target: they count for no class)."""
    if mode == "none":
        return None
    labelled = labels[labels >= 0]
    counts = np.bincount(labelled, minlength=num_classes).astype(np.float64)
    return torch.tensor(len(labelled) / (num_classes * np.maximum(counts, 1)), dtype=torch.float32)


class Classification:
    """Sequences in length-bucketed batches, one label each (see training/objectives.py for the seam)."""

    def __init__(
        self,
        train: EncodedSplit,
        val: EncodedSplit,
        batch_size: int,
        num_classes: int,
        weights: str = "none",
        device: torch.device | None = None,
        max_tokens: int | None = None,
        soft_targets: np.ndarray | None = None,
        alpha: float = 0.5,
    ):
        """`soft_targets` (one row of teacher logits per training row): distillation; rows labelled -1 have none."""
        self.train, self.val, self.batch_size, self.max_tokens = train, val, batch_size, max_tokens
        self.soft = torch.from_numpy(soft_targets.astype(np.float32)) if soft_targets is not None else None
        self.alpha, self.num_classes = alpha, num_classes
        w = class_weights(train.labels, num_classes, weights)
        self.weights = w.to(device) if (w is not None and device is not None) else w

    def batches(self, rng: np.random.Generator | None) -> list[np.ndarray]:
        return bucketed_batches(self.train.lengths, self.batch_size, rng is not None, rng, self.max_tokens)

    def shard(self, batches: list, dist: DistInfo) -> list:
        return shard(batches, dist)

    def start_epoch(self) -> None:
        pass

    def step(self, model: nn.Module, batch: np.ndarray, device: torch.device):
        ids, lengths, labels = collate(self.train, batch)
        # The ids' pages this step mapped go back (the page cache keeps them): a row read maps the cached pages
        # around it (fault-around, whole large folios), far more than the row; at 3.35 million soft-target rows,
        # giving them back every tenth step had left up to 382 MB mapped (docs/evidence.md#student-2026-12-06).
        release(self.train.ids)
        if self.soft is None:
            ids, labels = to_device(device, ids, labels)  # lengths stay on the CPU, where packing wants them
            logits = model(ids, lengths)
            loss = nn.functional.cross_entropy(logits.float(), labels, weight=self.weights)
            return loss, (logits.argmax(-1) == labels).sum(), len(labels)
        # Distillation: the teacher's logits for every row (MSE, as Tang et al.), the labels where there are any.
        labelled = int((self.train.labels[batch] >= 0).sum())  # known on the host: no read from the device
        ids, labels, target = to_device(device, ids, labels, self.soft[batch])
        logits = model(ids, lengths).float()
        soft_loss = nn.functional.mse_loss(logits, target)
        hard_sum = nn.functional.cross_entropy(logits, labels, weight=self.weights, ignore_index=-1, reduction="sum")
        loss = self.alpha * soft_loss + (1 - self.alpha) * hard_sum / max(labelled, 1)
        # training accuracy while distilling: agreement with the teacher, on every row
        return loss, (logits.argmax(-1) == target.argmax(-1)).sum(), len(batch)

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        k = self.num_classes
        sums = torch.zeros(1 + k * k, dtype=torch.float64, device=device)  # loss, truth x predicted: read once
        tokens = self.max_tokens * 4 if self.max_tokens else None
        for ids, lengths, labels in iterate(self.val, self.batch_size * 4, shuffle=False, max_tokens=tokens):
            ids, labels = to_device(device, ids, labels)
            logits = model(ids, lengths)
            loss = nn.functional.cross_entropy(logits.float(), labels, reduction="sum").double()
            counts = torch.bincount(labels * k + logits.argmax(-1), minlength=k * k).double()
            sums += torch.cat([loss.view(1), counts])
        values = sums.cpu().numpy()
        return {"loss": float(values[0]) / max(len(self.val), 1), **confusion_figures(values[1:].reshape(k, k))}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
