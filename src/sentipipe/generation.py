"""The generator task's text side: corpus, units, streams, and the generator itself.

Texts become units (characters, or spaCy tokens), each document ends with
`<eos>`, and a split is one long stream of unit ids. The vocabulary comes from
the training split; a unit it lacks (in a later split, or in a prompt) is
`<unk>`, which the model reads but never writes.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sentipipe.errors import DataError
from sentipipe.models.lm import LMSpec, RNNLanguageModel
from sentipipe.text.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocab

EOS = "<eos>"
EOS_ID = 2
FORMAT_VERSION = 1
_BLANK_LINES = re.compile(r"\n\s*\n")


# ---------------------------------------------------------------- corpus


def read_documents(path: Path, text_column: str) -> list[str]:
    """A .txt file is documents separated by blank lines; a table gives one document per row of `text_column`."""
    from sentipipe.data.files import read_table

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() == ".txt":
        raw = path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
        docs = [d.strip("\n") for d in _BLANK_LINES.split(raw)]
    else:
        table = read_table(path)
        if text_column not in table.columns:
            raise DataError(f"{path}: no column {text_column!r}; columns are {list(map(str, table.columns))}")
        docs = [str(t) for t in table[text_column].tolist() if isinstance(t, str)]
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise DataError(f"{path}: no non-empty text found")
    return docs


def split_documents(docs: list[str], val_size: float, test_size: float, seed: int) -> dict[str, list[str]]:
    """A seeded shuffle of whole documents into train / val / test."""
    if len(docs) < 3:
        raise DataError(f"{len(docs)} documents cannot make train, validation and test splits (need at least 3)")
    order = np.random.default_rng(seed).permutation(len(docs))
    n_val, n_test = max(1, round(len(docs) * val_size)), max(1, round(len(docs) * test_size))
    parts = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
    return {name: [docs[i] for i in sorted(index)] for name, index in parts.items()}


# ---------------------------------------------------------------- units


@dataclass(frozen=True)
class UnitSettings:
    unit: str = "char"  # char | token
    lowercase: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def to_units(texts: Sequence[str], settings: UnitSettings) -> list[list[str]]:
    if settings.unit == "char":
        return [list(t.lower() if settings.lowercase else t) for t in texts]
    from sentipipe.text.tokenizer import TokenizerSettings, tokenize

    return list(tokenize(texts, TokenizerSettings(lowercase=settings.lowercase, max_length=2**31)))


_NO_SPACE_BEFORE = re.compile(r"^(?:[.,!?;:%)\]}]+|'\w*|n't)$", re.IGNORECASE)


def from_units(units: Sequence[str], settings: UnitSettings) -> str:
    if settings.unit == "char":
        return "".join(units)
    out = ""
    for u in units:  # spaCy tokens back to text: a space between tokens, none before punctuation or clitics
        out += u if (not out or _NO_SPACE_BEFORE.match(u) or out.endswith(("(", "[", "$"))) else " " + u
    return out


def build_vocab(unit_lists: list[list[str]], min_freq: int, max_size: int) -> Vocab:
    counts: Counter = Counter()
    for units in unit_lists:
        counts.update(units)
    kept = sorted(
        (u for u, c in counts.items() if c >= min_freq and u not in (PAD, UNK, EOS)), key=lambda u: (-counts[u], u)
    )
    return Vocab([PAD, UNK, EOS, *kept[: max_size - 3]])


def encode_stream(unit_lists: list[list[str]], vocab: Vocab) -> np.ndarray:
    """One stream: every document's ids followed by <eos>."""
    parts = []
    for units in unit_lists:
        parts.append(vocab.encode(units))
        parts.append(np.array([EOS_ID], dtype=np.int32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


# ---------------------------------------------------------------- the generator


class Generator:
    """Network, vocabulary and unit settings in one file; prompts in, sampled text out."""

    def __init__(self, model: RNNLanguageModel, vocab: Vocab, settings: UnitSettings, device="cpu"):
        self.model = model.to(device).eval()
        self.vocab, self.settings, self.device = vocab, settings, torch.device(device)

    def save(self, path: str | Path) -> None:
        from sentipipe.io import atomic_write

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
        atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))

    @classmethod
    def load(cls, path: str | Path, device="cpu") -> Generator:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
        if bundle.get("format_version") != FORMAT_VERSION or bundle.get("task") != "generator":
            raise ValueError(f"{path}: not a sentipipe generator (format {bundle.get('format_version')!r})")
        model = RNNLanguageModel(LMSpec(**bundle["spec"]))
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
        if self.settings.unit == "token" and prompt and text and not _NO_SPACE_BEFORE.match(out[0]):
            text = " " + text
        return text, unknown

    def generate_frame(self, prompts: Sequence[str], **options) -> pd.DataFrame:
        rows = []
        for prompt in prompts:
            text, unknown = self.generate(prompt, **options)
            rows.append({"prompt": prompt, "generated": text, "text": prompt + text, "unknown_units": unknown})
        return pd.DataFrame(rows, columns=["prompt", "generated", "text", "unknown_units"])
