"""spaCy tokenization with the settings the served model reuses verbatim."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache

import spacy


@dataclass(frozen=True)
class TokenizerSettings:
    lowercase: bool = True
    max_length: int = 256
    language: str = "en"

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=4)
def _blank(language: str):
    # A blank pipeline is the rule-based tokenizer only: no model download.
    return spacy.blank(language)


def tokenize_with_offsets(
    texts: Iterable[str], settings: TokenizerSettings, batch_size: int = 1000
) -> Iterator[list[tuple[str, int, int]]]:
    """Yield (token, start, end) per token: the character span lets other tokenizers align to ours."""
    nlp = _blank(settings.language)
    for doc in nlp.tokenizer.pipe(texts, batch_size=batch_size):
        tokens = [(t.text, t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]
        if settings.lowercase:
            tokens = [(t.lower(), a, b) for t, a, b in tokens]
        yield tokens[: settings.max_length]


def tokenize(texts: Iterable[str], settings: TokenizerSettings, batch_size: int = 1000) -> Iterator[list[str]]:
    """Yield one token list per text, lowercased and truncated as configured."""
    for tokens in tokenize_with_offsets(texts, settings, batch_size):
        yield [t for t, _, _ in tokens]
