"""The generator as one file: network, vocabulary and unit settings; prompts in, sampled text out.

The served file may also carry an n-gram mixed into the network's distribution: mixture.py's
MixedGenerator reads it (this module knows no n-gram, so training does not depend on one).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from sentipipe.io import write_bytes
from sentipipe.tasks.generator.network import GeneratorNetwork, GeneratorSpec
from sentipipe.tasks.generator.units import EOS_ID, NO_SPACE_BEFORE, UnitSettings, from_units, to_units
from sentipipe.text.vocab import PAD_ID, UNK_ID, Vocab

FORMAT_VERSION = 2  # 2: an optional n-gram mixture; files of version 1 (the network alone) still load
READABLE_VERSIONS = (1, 2)
OUTPUT_COLUMNS = ["prompt", "generated", "text", "unknown_units"]


class Generator:
    """Network, vocabulary and unit settings in one file; prompts in, sampled text out."""

    def __init__(self, model: GeneratorNetwork, vocab: Vocab, settings: UnitSettings, device="cpu"):
        self.model = model.to(device).eval()
        self.vocab, self.settings, self.device = vocab, settings, torch.device(device)

    def bundle(self) -> dict:
        """What the file holds."""
        return {
            "format_version": FORMAT_VERSION,
            "task": "generator",
            "spec": self.model.spec.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "vocab": self.vocab.tokens,
            "units": self.settings.to_dict(),
        }

    def save(self, path: str | Path) -> None:
        buffer = io.BytesIO()
        torch.save(self.bundle(), buffer)
        write_bytes(path, buffer.getvalue())

    @staticmethod
    def read(path: str | Path) -> dict:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
        if bundle.get("format_version") not in READABLE_VERSIONS or bundle.get("task") != "generator":
            raise ValueError(f"{path}: not a sentipipe generator (format {bundle.get('format_version')!r})")
        return bundle

    @staticmethod
    def network_parts(bundle: dict) -> tuple[GeneratorNetwork, Vocab, UnitSettings]:
        model = GeneratorNetwork(GeneratorSpec(**bundle["spec"]))
        model.load_state_dict(bundle["state_dict"])
        return model, Vocab(bundle["vocab"]), UnitSettings(**bundle["units"])

    @classmethod
    def load(cls, path: str | Path, device="cpu") -> Generator:
        """The network alone; a served file with an n-gram mixed in is mixture.MixedGenerator's to read."""
        bundle = cls.read(path)
        if "mixture" in bundle:
            raise ValueError(f"{path}: a generator with an n-gram mixed in; load it with mixture.MixedGenerator")
        return cls(*cls.network_parts(bundle), device)

    def next_scores(self, logits: torch.Tensor, contexts: list[list[int]]) -> torch.Tensor:
        """Each row's scores of the next unit, which temperature and top-k shape: the network's logits.

        `contexts`: each row's ids so far (a subclass mixing in an n-gram reads them).
        """
        return logits.float().cpu()

    def encode_prompt(self, prompt: str) -> tuple[list[int], int]:
        """<eos> (the start of a document) then the prompt's ids; also how many units were unknown."""
        units = to_units([prompt], self.settings)[0] if prompt else []
        ids = self.vocab.encode(units).tolist()
        return [EOS_ID, *ids], sum(i == UNK_ID for i in ids)

    @torch.no_grad()
    def generate_batch(
        self, prompts: Sequence[str], max_length: int = 200, temperature: float = 0.8, top_k: int = 0, seed: int = 13
    ) -> list[tuple[str, int]]:
        """Continue every prompt at once: one forward pass a step for all of them, one random generator each.

        Each prompt samples from its own torch.Generator seeded with `seed`, so a prompt's text does not
        depend on the others in the request; the same request gives the same texts.
        """
        encoded = [self.encode_prompt(p) for p in prompts]
        if not encoded:
            return []
        lengths = torch.tensor([len(ids) for ids, _ in encoded])
        padded = torch.full((len(encoded), int(lengths.max())), PAD_ID, dtype=torch.long)
        for row, (ids, _) in enumerate(encoded):
            padded[row, : len(ids)] = torch.tensor(ids)
        rngs = [torch.Generator().manual_seed(int(seed)) for _ in encoded]
        logits, hidden = self.model.prime(padded.to(self.device), lengths)
        outputs: list[list[str]] = [[] for _ in encoded]
        contexts = [list(ids) for ids, _ in encoded]  # each row's ids so far: the n-gram's context
        done = [False] * len(encoded)
        for _ in range(max_length):
            scores = self.next_scores(logits, contexts)
            scores[:, [PAD_ID, UNK_ID]] = float("-inf")
            if temperature <= 0:
                chosen = scores.argmax(-1).tolist()
            else:
                scores = scores / temperature
                if 0 < top_k < scores.size(1):
                    kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
                    scores[scores < kth] = float("-inf")
                probs = torch.softmax(scores, -1)
                chosen = [
                    int(torch.multinomial(probs[row], 1, generator=rngs[row])) if not done[row] else PAD_ID
                    for row in range(len(encoded))
                ]
            for row, next_id in enumerate(chosen):
                if done[row]:
                    continue
                if next_id == EOS_ID:
                    done[row] = True
                else:
                    outputs[row].append(self.vocab.tokens[next_id])
                    contexts[row].append(next_id)
            if all(done):
                break
            step = torch.tensor([[i if i != EOS_ID else PAD_ID] for i in chosen], device=self.device)
            logits, hidden = self.model(step, hidden)
            logits = logits[:, -1]
        return [
            (self._detokenize(prompt, out), unknown) for prompt, out, (_, unknown) in zip(prompts, outputs, encoded)
        ]

    def _detokenize(self, prompt: str, units: list[str]) -> str:
        text = from_units(units, self.settings)
        if self.settings.unit == "token" and prompt and text and not NO_SPACE_BEFORE.match(units[0]):
            text = " " + text
        return text

    def generate(self, prompt: str, **options) -> tuple[str, int]:
        """Sample up to `max_length` units after the prompt, stopping at <eos>. Same seed, same text."""
        return self.generate_batch([prompt], **options)[0]

    def generate_rows(self, prompts: Sequence[str], **options) -> list[dict]:
        """One row per prompt: the prompt, what was generated, both together, the prompt's unknown units."""
        return [
            {"prompt": prompt, "generated": text, "text": prompt + text, "unknown_units": unknown}
            for prompt, (text, unknown) in zip(prompts, self.generate_batch(list(prompts), **options), strict=True)
        ]

    def generate_frame(self, prompts: Sequence[str], **options) -> pd.DataFrame:
        return pd.DataFrame(self.generate_rows(prompts, **options), columns=OUTPUT_COLUMNS)
