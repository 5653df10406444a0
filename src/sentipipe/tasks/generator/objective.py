"""The generator's training objective: the next unit at every position, truncated backpropagation through time."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from sentipipe.training.device import to_device
from sentipipe.training.distributed import DistInfo


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


def moved(hidden, device: torch.device):
    """A hidden state (a tensor, or an LSTM's pair) on `device`."""
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return tuple(h.to(device) for h in hidden)
    return hidden.to(device)


class NextUnit:
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
        x, y = to_device(device, *(torch.from_numpy(np.ascontiguousarray(a)) for a in batch))
        logits, hidden = masked_logits(model, x, moved(self.hidden, device), self.exclude)
        self.hidden = detach(hidden)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        return loss, (logits.argmax(-1) == y).sum(), y.numel()

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        lane_count = min(self.batch_size, 16)
        return stream_scores(model, self.val, lane_count, self.bptt * 4, device, self.chars_per_unit, self.exclude)

    def state_dict(self) -> dict:
        """The hidden state carried into the next window (a checkpoint mid-epoch resumes the lanes exactly)."""
        return {"hidden": moved(self.hidden, torch.device("cpu"))}

    def load_state_dict(self, state: dict) -> None:
        self.hidden = state.get("hidden")


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
    hidden, count = None, 0
    sums = torch.zeros(2, dtype=torch.float64, device=device)  # negative log-likelihood, correct: read at the end
    for x, y in windows(x_all, y_all, window):
        x, y = to_device(device, *(torch.from_numpy(np.ascontiguousarray(a)) for a in (x, y)))
        logits, hidden = masked_logits(model, x, hidden, list(exclude))
        nll = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
        sums += torch.stack([nll.double(), (logits.argmax(-1) == y).sum().double()])
        count += y.numel()
    nll, correct = sums.tolist()
    loss = nll / max(count, 1)
    return {
        "loss": loss,
        "accuracy": correct / max(count, 1),
        "perplexity": math.exp(min(loss, 50.0)),
        "bpc": loss / math.log(2) / chars_per_unit,
    }


@torch.no_grad()
def stream_probabilities(
    model: nn.Module,
    stream: np.ndarray,
    lane_count: int,
    window: int,
    device: torch.device,
    exclude: list[int] | tuple[int, ...] = (),
) -> tuple[np.ndarray, np.ndarray, int]:
    """The positions `stream_scores` predicts (in stream order), the network's probability of the unit at
    each, and how many of them were its likeliest unit.

    The same lanes and windows as `stream_scores`, so the mean of -log2 of these is its bits per unit.
    """
    count = max(1, min(lane_count, (len(stream) - 1) // 2))
    x_all, y_all = lanes(stream.astype(np.int64), count)
    hidden, parts, correct = None, [], 0
    for x, y in windows(x_all, y_all, window):
        x, y = to_device(device, *(torch.from_numpy(np.ascontiguousarray(a)) for a in (x, y)))
        logits, hidden = masked_logits(model, x, hidden, list(exclude))
        logp = torch.log_softmax(logits.double(), -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
        parts.append(logp.cpu().numpy())
        correct += int((logits.argmax(-1) == y).sum())
    # lane l holds the targets at 1 + l * usable ... (l + 1) * usable: row by row is stream order
    probs = np.exp(np.concatenate(parts, axis=1)).reshape(-1)
    return np.arange(1, 1 + len(probs)), probs, correct
