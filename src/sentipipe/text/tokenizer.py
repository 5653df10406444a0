"""spaCy tokenization with the settings the served model reuses verbatim."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache

import spacy

URL, NUMBER, USER = "<url>", "<num>", "<user>"


@dataclass(frozen=True)
class TokenizerSettings:
    lowercase: bool = True
    max_length: int = 256
    language: str = "en"
    special_tokens: bool = False  # URLs, numbers and @mentions become <url>, <num>, <user>

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=4)
def _blank(language: str):
    # A blank pipeline is the rule-based tokenizer only: no model download.
    return spacy.blank(language)


def _surface(token, settings: TokenizerSettings) -> str:
    if settings.special_tokens:
        if token.like_url:
            return URL
        if token.like_num:
            return NUMBER
        if token.text.startswith("@") and len(token.text) > 1:
            return USER
    return token.text.lower() if settings.lowercase else token.text


def tokenize_with_offsets(
    texts: Iterable[str], settings: TokenizerSettings, batch_size: int = 1000, n_process: int = 1
) -> Iterator[list[tuple[str, int, int]]]:
    """Yield (token, start, end) per token: the character span lets other tokenizers align to ours."""
    nlp = _blank(settings.language)
    if n_process > 1:
        docs = nlp.pipe(texts, batch_size=batch_size, n_process=n_process)
    else:
        docs = nlp.tokenizer.pipe(texts, batch_size=batch_size)
    for doc in docs:
        tokens = [(_surface(t, settings), t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]
        yield tokens[: settings.max_length]


def tokenize(
    texts: Iterable[str], settings: TokenizerSettings, batch_size: int = 1000, n_process: int = 1
) -> Iterator[list[str]]:
    """Yield one token list per text, lowercased and truncated as configured."""
    for tokens in tokenize_with_offsets(texts, settings, batch_size, n_process):
        yield [t for t, _, _ in tokens]
