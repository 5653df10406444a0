"""The whole predictor in one file: network, vocabulary, tokenizer settings, labels.

Everything that turns raw text into probabilities travels together, so a
checkpoint, the evaluation stage and the served MLflow model cannot disagree.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sentipipe.io import write_bytes
from sentipipe.tasks.classifier.network import ClassifierNetwork, ClassifierSpec
from sentipipe.text.batching import iterate
from sentipipe.text.encoding import EncodedSplit, encode
from sentipipe.text.tokenizer import TokenizerSettings, tokenize
from sentipipe.text.vocab import Vocab

FORMAT_VERSION = 1


class Predictor:
    def __init__(
        self,
        model: ClassifierNetwork,
        vocab: Vocab,
        labels: list[str],
        tokenizer: TokenizerSettings,
        device: torch.device | str = "cpu",
    ):
        self.model = model.to(device).eval()
        self.vocab = vocab
        self.labels = list(labels)
        self.tokenizer = tokenizer
        self.device = torch.device(device)

    def save(self, path: str | Path) -> None:
        bundle = {
            "format_version": FORMAT_VERSION,
            "spec": self.model.spec.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "vocab": self.vocab.tokens,
            "labels": self.labels,
            "tokenizer": self.tokenizer.to_dict(),
        }
        # Serialise to memory first: torch.save names the archive after the file,
        # and the temp file's random name would make identical models differ.
        buffer = io.BytesIO()
        torch.save(bundle, buffer)
        write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> Predictor:
        # map_location lets a model trained on CUDA load on a CPU-only host.
        bundle = torch.load(path, map_location="cpu", weights_only=True)
        if bundle.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported model format {bundle.get('format_version')!r}")
        model = ClassifierNetwork(ClassifierSpec(**bundle["spec"]))
        model.load_state_dict(bundle["state_dict"])
        return cls(model, Vocab(bundle["vocab"]), bundle["labels"], TokenizerSettings(**bundle["tokenizer"]), device)

    @torch.no_grad()
    def predict_encoded(self, split: EncodedSplit, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (n, classes) in the split's order."""
        self.model.eval()
        probs = np.zeros((len(split), len(self.labels)), dtype=np.float32)
        order = np.argsort(split.lengths, kind="stable")
        start = 0
        for ids, lengths, _ in iterate(split, batch_size, shuffle=False):
            logits = self.model(ids.to(self.device), lengths)
            index = order[start : start + len(lengths)]
            probs[index] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            start += len(lengths)
        return probs

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        token_lists = list(tokenize(texts, self.tokenizer))
        split = encode(token_lists, np.zeros(len(token_lists), dtype=np.int64), self.vocab)
        return self.predict_encoded(split, batch_size)
