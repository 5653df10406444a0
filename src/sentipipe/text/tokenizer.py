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


def tokenize(texts: Iterable[str], settings: TokenizerSettings, batch_size: int = 1000) -> Iterator[list[str]]:
    """Yield one token list per text, lowercased and truncated as configured."""
    nlp = _blank(settings.language)
    for doc in nlp.tokenizer.pipe(texts, batch_size=batch_size):
        tokens = [t.text for t in doc if not t.is_space]
        if settings.lowercase:
            tokens = [t.lower() for t in tokens]
        yield tokens[: settings.max_length]
