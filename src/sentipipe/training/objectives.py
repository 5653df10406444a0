"""What one task trains on: the seam between the shared training loop and a task.

An objective answers four questions for `training.loop.fit`:

- `batches(rng)`: one epoch's training batches, shuffled by `rng` (None: the
  fixed order, used to count steps);
- `shard(batches, dist)`: this rank's share under torchrun;
- `start_epoch()` then `step(model, batch, device)` per batch: the mean loss
  (a tensor to back-propagate), the number of correct predictions and of
  predictions made;
- `validate(model, device)`: `loss` and `accuracy` on the validation split,
  plus any figure of the task's own (logged as `val_<name>`).

`Classification` scores one label per sequence; `LanguageModel` predicts the
next unit at every position with truncated backpropagation through time.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from sentipipe.text.encoding import EncodedSplit
from sentipipe.training.batching import bucketed_batches, collate, iterate
from sentipipe.training.distributed import DistInfo, shard


def class_weights(labels: np.ndarray, num_classes: int, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return torch.tensor(len(labels) / (num_classes * np.maximum(counts, 1)), dtype=torch.float32)


class Classification:
    """Sequences in length-bucketed batches, one label each, cross-entropy on the pooled output."""

    def __init__(
        self,
        train: EncodedSplit,
        val: EncodedSplit,
        batch_size: int,
        num_classes: int,
        weights: str = "none",
        device: torch.device | None = None,
    ):
        self.train, self.val, self.batch_size = train, val, batch_size
        w = class_weights(train.labels, num_classes, weights)
        self.weights = w.to(device) if (w is not None and device is not None) else w

    def batches(self, rng: np.random.Generator | None) -> list[np.ndarray]:
        return bucketed_batches(self.train.lengths, self.batch_size, rng is not None, rng)

    def shard(self, batches: list, dist: DistInfo) -> list:
        return shard(batches, dist)

    def start_epoch(self) -> None:
        pass

    def step(self, model: nn.Module, batch: np.ndarray, device: torch.device):
        ids, lengths, labels = collate(self.train, batch)
        ids, labels = ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits = model(ids, lengths)
        loss = nn.functional.cross_entropy(logits.float(), labels, weight=self.weights)
        return loss, int((logits.argmax(-1) == labels).sum().item()), len(labels)

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        loss_sum, correct = 0.0, 0
        for ids, lengths, labels in iterate(self.val, self.batch_size * 4, shuffle=False):
            labels = labels.to(device)
            logits = model(ids.to(device), lengths)
            loss_sum += nn.functional.cross_entropy(logits.float(), labels, reduction="sum").item()
            correct += (logits.argmax(-1) == labels).sum().item()
        n = max(len(self.val), 1)
        return {"loss": loss_sum / n, "accuracy": correct / n}


def lanes(stream: np.ndarray, count: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cut a token stream into `count` contiguous lanes: inputs and the next unit of each (teacher forcing)."""
    usable = (len(stream) - 1 - offset) // count
    if usable < 1:
        raise ValueError(f"a stream of {len(stream)} units cannot fill {count} lanes; lower batch_size")
    x = stream[offset : offset + count * usable].reshape(count, usable)
    y = stream[offset + 1 : offset + 1 + count * usable].reshape(count, usable)
    return x, y


def windows(x: np.ndarray, y: np.ndarray, bptt: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed windows of `bptt` steps along the lanes; the hidden state flows from one to the next."""
    return [(x[:, t : t + bptt], y[:, t : t + bptt]) for t in range(0, x.shape[1], bptt)]


def detach(hidden):
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return tuple(h.detach() for h in hidden)
    return hidden.detach()


class LanguageModel:
    """Next-unit prediction over one long stream with truncated backpropagation through time.

    The training stream is laid out in `batch_size` lanes; each step feeds a
    window of `bptt` units of every lane and carries the hidden state (detached)
    into the next window. Every epoch starts the lanes at a random offset below
    `bptt`, so window boundaries move. Under torchrun each rank takes its own
    lanes, so every rank's hidden state still follows its text.

    Validation runs the whole validation stream the same way and reports the
    loss per unit (nats), perplexity and bits per character (`chars_per_unit`
    converts units to characters: 1 for characters, the mean token length plus
    its space for tokens).
    """

    def __init__(
        self,
        train: np.ndarray,
        val: np.ndarray,
        batch_size: int,
        bptt: int,
        chars_per_unit: float = 1.0,
        exclude: tuple[int, ...] = (),
    ):
        self.train, self.val = train.astype(np.int64), val.astype(np.int64)
        self.batch_size, self.bptt, self.chars_per_unit = batch_size, bptt, chars_per_unit
        self.exclude = list(exclude)  # ids never to predict (padding): their logits are masked out
        self.hidden = None

    def batches(self, rng: np.random.Generator | None) -> list[tuple[np.ndarray, np.ndarray]]:
        offset = int(rng.integers(0, self.bptt)) if rng is not None else 0
        return windows(*lanes(self.train, self.batch_size, offset), self.bptt)

    def shard(self, batches: list, dist: DistInfo) -> list:
        if not dist.enabled:
            return batches
        return [(x[dist.rank :: dist.world_size], y[dist.rank :: dist.world_size]) for x, y in batches]

    def start_epoch(self) -> None:
        self.hidden = None

    def step(self, model: nn.Module, batch, device: torch.device):
        x, y = (torch.from_numpy(np.ascontiguousarray(a)).to(device, non_blocking=True) for a in batch)
        logits, hidden = masked_logits(model, x, self.hidden, self.exclude)
        self.hidden = detach(hidden)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        return loss, int((logits.argmax(-1) == y).sum().item()), y.numel()

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        lane_count = min(self.batch_size, 16)
        return stream_scores(model, self.val, lane_count, self.bptt * 4, device, self.chars_per_unit, self.exclude)


def masked_logits(model: nn.Module, x: torch.Tensor, hidden, exclude: list[int]):
    """The model's next-unit logits with the `exclude` ids (padding) made impossible."""
    logits, hidden = model(x, hidden)
    logits = logits.float()
    if exclude:
        logits[..., exclude] = float("-inf")
    return logits, hidden


@torch.no_grad()
def stream_scores(
    model: nn.Module,
    stream: np.ndarray,
    lane_count: int,
    window: int,
    device: torch.device,
    chars_per_unit: float = 1.0,
    exclude: list[int] | tuple[int, ...] = (),
) -> dict[str, float]:
    """Loss per unit, next-unit accuracy, perplexity and bits per character over a whole stream."""
    x_all, y_all = lanes(stream.astype(np.int64), max(1, min(lane_count, (len(stream) - 1) // 2)))
    hidden, nll, correct, count = None, 0.0, 0, 0
    for x, y in windows(x_all, y_all, window):
        x, y = (torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in (x, y))
        logits, hidden = masked_logits(model, x, hidden, list(exclude))
        nll += nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        correct += (logits.argmax(-1) == y).sum().item()
        count += y.numel()
    loss = nll / max(count, 1)
    return {
        "loss": loss,
        "accuracy": correct / max(count, 1),
        "perplexity": math.exp(min(loss, 50.0)),
        "bpc": loss / math.log(2) / chars_per_unit,
    }
