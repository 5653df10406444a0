"""The served generator's next-unit distribution: the network's, mixed with a modified Kneser-Ney n-gram's.

P(w | text) = weight * P_network(w | text) + (1 - weight) * P_ngram(w | the last order-1 units of text).

A linear interpolation of two distributions is a distribution, and its bits per unit are a convex function
of the weight, so one search on validation finds the best weight (`choose_weight`); the evaluate stage also
chooses the n-gram's order on validation. The two models err differently (the n-gram copies long stretches
it has seen; the network generalises), which is why the mixture beats both.

The n-gram travels in the served file as the training ids it was fitted on and its order: loading refits it
(a fit is deterministic, so the same counts and the same probabilities), a file of about a megabyte instead
of tables of hashed n-grams some hundred times larger. Serving code: torch and numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sentipipe.tasks.generator.network import GeneratorNetwork
from sentipipe.tasks.generator.ngram import KneserNey
from sentipipe.tasks.generator.sampler import Generator
from sentipipe.tasks.generator.units import EOS_ID, UnitSettings
from sentipipe.text.vocab import PAD_ID, Vocab


def _compact(stream: np.ndarray) -> torch.Tensor:
    """The ids in the smallest integer type that holds them (the served file's size)."""
    top = int(stream.max()) if len(stream) else 0
    dtype = np.uint8 if top < 256 else np.int16 if top < 32768 else np.int32
    return torch.from_numpy(np.ascontiguousarray(stream, dtype=dtype))


@dataclass
class Mixture:
    """The n-gram half of the served distribution: the fitted model, its order and the network's weight."""

    ngram: KneserNey
    order: int
    weight: float  # the network's share; the n-gram has 1 - weight
    stream: np.ndarray  # the training ids the n-gram was fitted on (what the served file carries)

    @classmethod
    def fit(cls, stream: np.ndarray, vocab_size: int, order: int, weight: float) -> Mixture:
        ngram = KneserNey(vocab_size, order, lean=True).fit(stream, EOS_ID)  # it is scored at `order` only
        return cls(ngram, order, float(weight), np.asarray(stream, dtype=np.int64))

    def to_bundle(self) -> dict:
        return {"order": self.order, "weight": self.weight, "stream": _compact(self.stream)}

    @classmethod
    def from_bundle(cls, bundle: dict, vocab_size: int) -> Mixture:
        stream = bundle["stream"].numpy().astype(np.int64)
        return cls.fit(stream, vocab_size, int(bundle["order"]), float(bundle["weight"]))

    def mix(self, network: np.ndarray, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        """Each row's mixed next-unit distribution: `network` rows are the network's, `contexts` the ids so far."""
        ngram = np.stack([self.ngram.distribution(c, self.order) for c in contexts])
        return self.weight * network + (1.0 - self.weight) * ngram

    def scored(self, network: np.ndarray, stream: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The mixture's probability of each unit of `stream` at `positions`, given the network's there."""
        return self.weight * network + (1.0 - self.weight) * self.ngram.probabilities(stream, self.order)[positions]

    def describe(self) -> str:
        return f"{self.weight:.3f} x the network + {1 - self.weight:.3f} x a modified Kneser-Ney {self.order}-gram"


class MixedGenerator(Generator):
    """The served generator: a Generator whose every next unit is drawn from the network mixed with an n-gram
    (the distribution evaluate scored); without a mixture, the network alone. Reads either kind of file."""

    def __init__(
        self,
        model: GeneratorNetwork,
        vocab: Vocab,
        settings: UnitSettings,
        device="cpu",
        mixture: Mixture | None = None,
    ):
        super().__init__(model, vocab, settings, device)
        self.mixture = mixture

    def bundle(self) -> dict:
        bundle = super().bundle()
        if self.mixture is not None:
            bundle["mixture"] = self.mixture.to_bundle()
        return bundle

    @classmethod
    def load(cls, path, device="cpu") -> MixedGenerator:
        bundle = cls.read(path)
        model, vocab, settings = cls.network_parts(bundle)
        mixture = Mixture.from_bundle(bundle["mixture"], len(vocab)) if "mixture" in bundle else None
        return cls(model, vocab, settings, device, mixture)

    def next_probabilities(self, logits: torch.Tensor, contexts: Sequence[Sequence[int]]) -> torch.Tensor:
        """Each row's next-unit distribution as evaluate scores it: the network's (padding excluded), mixed with
        the n-gram's after the row's ids so far when there is a mixture."""
        scores = logits.detach().float().cpu()
        scores[:, PAD_ID] = float("-inf")
        probs = torch.softmax(scores.double(), -1)
        if self.mixture is not None:
            probs = torch.from_numpy(self.mixture.mix(probs.numpy(), contexts))
        return probs

    def next_scores(self, logits: torch.Tensor, contexts: list[list[int]]) -> torch.Tensor:
        if self.mixture is None:
            return super().next_scores(logits, contexts)
        return torch.log(self.next_probabilities(logits, contexts)).float()  # log-probabilities as the scores


def mixed_bits(network: np.ndarray, ngram: np.ndarray, weight: float) -> float:
    """Mean bits per unit of the mixture, given each model's probability of every true next unit.

    Infinite when a unit gets no probability (an n-gram whose estimated discounts are 0 can give none).
    """
    with np.errstate(divide="ignore"):
        return float(-np.log2(weight * network + (1.0 - weight) * ngram).mean())


def choose_weight(network: np.ndarray, ngram: np.ndarray, tolerance: float = 1e-4) -> tuple[float, float]:
    """The network's weight in [0, 1] that minimises the mixture's bits per unit, and those bits.

    The bits are convex in the weight, so a golden-section search converges to the minimum; the ends
    (either model alone) are candidates too.
    """
    ratio = (math.sqrt(5) - 1) / 2
    low, high = 0.0, 1.0
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = mixed_bits(network, ngram, a), mixed_bits(network, ngram, b)
    while high - low > tolerance:
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = mixed_bits(network, ngram, a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = mixed_bits(network, ngram, b)
    scored = {w: mixed_bits(network, ngram, w) for w in (round((low + high) / 2, 4), 0.0, 1.0)}
    best = min(scored, key=scored.get)
    return best, scored[best]
