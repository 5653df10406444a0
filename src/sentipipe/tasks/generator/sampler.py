"""The generator as one file: network, vocabulary and unit settings; prompts in, sampled text out."""

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

FORMAT_VERSION = 1
OUTPUT_COLUMNS = ["prompt", "generated", "text", "unknown_units"]


class Generator:
    """Network, vocabulary and unit settings in one file; prompts in, sampled text out."""

    def __init__(self, model: GeneratorNetwork, vocab: Vocab, settings: UnitSettings, device="cpu"):
        self.model = model.to(device).eval()
        self.vocab, self.settings, self.device = vocab, settings, torch.device(device)

    def save(self, path: str | Path) -> None:
        bundle = {
            "format_version": FORMAT_VERSION,
            "task": "generator",
            "spec": self.model.spec.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "vocab": self.vocab.tokens,
            "units": self.settings.to_dict(),
        }
        buffer = io.BytesIO()
        torch.save(bundle, buffer)
        write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, device="cpu") -> Generator:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
        if bundle.get("format_version") != FORMAT_VERSION or bundle.get("task") != "generator":
            raise ValueError(f"{path}: not a sentipipe generator (format {bundle.get('format_version')!r})")
        model = GeneratorNetwork(GeneratorSpec(**bundle["spec"]))
        model.load_state_dict(bundle["state_dict"])
        return cls(model, Vocab(bundle["vocab"]), UnitSettings(**bundle["units"]), device)

    def encode_prompt(self, prompt: str) -> tuple[list[int], int]:
        """<eos> (the start of a document) then the prompt's ids; also how many units were unknown."""
        units = to_units([prompt], self.settings)[0] if prompt else []
        ids = self.vocab.encode(units).tolist()
        return [EOS_ID, *ids], sum(i == UNK_ID for i in ids)

    @torch.no_grad()
    def generate(
        self, prompt: str, max_length: int = 200, temperature: float = 0.8, top_k: int = 0, seed: int = 13
    ) -> tuple[str, int]:
        """Sample up to `max_length` units after the prompt, stopping at <eos>. Same seed, same text."""
        ids, unknown = self.encode_prompt(prompt)
        rng = torch.Generator().manual_seed(int(seed))
        logits, hidden = self.model(torch.tensor([ids], device=self.device))
        out: list[str] = []
        for _ in range(max_length):
            scores = logits[0, -1].float().cpu()
            scores[[PAD_ID, UNK_ID]] = float("-inf")
            if temperature <= 0:
                next_id = int(scores.argmax())
            else:
                scores = scores / temperature
                if 0 < top_k < len(scores):
                    kth = torch.topk(scores, top_k).values[-1]
                    scores[scores < kth] = float("-inf")
                next_id = int(torch.multinomial(torch.softmax(scores, -1), 1, generator=rng))
            if next_id == EOS_ID:
                break
            out.append(self.vocab.tokens[next_id])
            logits, hidden = self.model(torch.tensor([[next_id]], device=self.device), hidden)
        text = from_units(out, self.settings)
        if self.settings.unit == "token" and prompt and text and not NO_SPACE_BEFORE.match(out[0]):
            text = " " + text
        return text, unknown

    def generate_rows(self, prompts: Sequence[str], **options) -> list[dict]:
        """One row per prompt: the prompt, what was generated, both together, the prompt's unknown units."""
        rows = []
        for prompt in prompts:
            text, unknown = self.generate(prompt, **options)
            rows.append({"prompt": prompt, "generated": text, "text": prompt + text, "unknown_units": unknown})
        return rows

    def generate_frame(self, prompts: Sequence[str], **options) -> pd.DataFrame:
        return pd.DataFrame(self.generate_rows(prompts, **options), columns=OUTPUT_COLUMNS)
