"""data/classifier/vocab.json: the vocabulary, its counts, the labels and the tokenizer settings.

Written by tokenize; read by embed (words to give vectors) and train (what the
predictor carries into serving).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentipipe.io import read_json, write_json
from sentipipe.text.tokenizer import TokenizerSettings
from sentipipe.text.vocab import Vocab


@dataclass(frozen=True)
class VocabFile:
    vocab: Vocab
    labels: list[str]
    tokenizer: TokenizerSettings
    counts: dict[str, int]


def write(path: Path, content: VocabFile) -> None:
    write_json(
        path,
        {
            "tokenizer": content.tokenizer.to_dict(),
            "labels": content.labels,
            "tokens": content.vocab.tokens,
            "counts": [int(content.counts.get(t, 0)) for t in content.vocab.tokens],
        },
    )


def read(path: Path) -> VocabFile:
    data = read_json(path)
    return VocabFile(
        Vocab(data["tokens"]),
        data["labels"],
        TokenizerSettings(**data["tokenizer"]),
        dict(zip(data["tokens"], data["counts"], strict=False)),
    )
