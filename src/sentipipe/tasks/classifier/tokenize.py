"""Stage tokenize: prepared texts -> spaCy tokens -> id arrays per split, the vocabulary from train only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from sentipipe.data.paths import SPLITS, prepared
from sentipipe.errors import DataError
from sentipipe.io import require, write_json
from sentipipe.tasks.classifier import vocab_file
from sentipipe.tasks.classifier.params import ClassifierConfig, TokenizeParams
from sentipipe.tasks.classifier.paths import TOKENS_REPORT, VOCAB, tokens
from sentipipe.text.encoding import encode, save_split
from sentipipe.text.tokenizer import TokenizerSettings, truncate
from sentipipe.text.tokenizer import tokenize as spacy_tokenize
from sentipipe.text.vocab import UNK_ID, build_vocab


def chosen_length(p: TokenizeParams, train_lengths: np.ndarray) -> tuple[int, str]:
    """The tokens kept per text, and why: set in params, or the training texts' percentile, at most length_cap."""
    percentile = max(1, int(np.ceil(np.percentile(train_lengths if len(train_lengths) else [1], p.length_percentile))))
    said = f"the training texts' {p.length_percentile:g}th percentile is {percentile}"
    if p.max_length != "auto":
        return int(p.max_length), f"set in params ({said})"
    return min(p.length_cap, percentile), f"{said}, at most length_cap {p.length_cap}"


def tokenize(params: ClassifierConfig) -> dict:
    p = params.classifier.tokenize
    require(*(prepared(s) for s in SPLITS))
    untruncated = TokenizerSettings(lowercase=p.lowercase, max_length=2**31, special_tokens=p.special_tokens)
    frames = {s: pd.read_parquet(prepared(s)) for s in SPLITS}
    full = {
        s: list(spacy_tokenize(f["text"].tolist(), untruncated, p.batch_size, p.n_process)) for s, f in frames.items()
    }
    length, rule = chosen_length(p, np.array([len(t) for t in full["train"]]))
    settings = dataclasses.replace(untruncated, max_length=length, truncation=p.truncation)
    truncated = {s: sum(len(t) > length for t in toks) for s, toks in full.items()}
    token_lists = {s: [truncate(t, length, p.truncation) for t in toks] for s, toks in full.items()}
    vocab, counts = build_vocab(token_lists["train"], p.min_freq, p.max_size)
    labels = sorted(frames["train"]["label"].unique().tolist())
    label_index = {label: i for i, label in enumerate(labels)}
    stats = {}
    for split in SPLITS:
        y = frames[split]["label"].map(label_index)
        if y.isna().any():
            raise DataError(
                f"split {split!r} has labels unseen in train: {sorted(set(frames[split]['label']) - set(labels))}"
            )
        encoded = encode(token_lists[split], y.to_numpy(), vocab)
        save_split(tokens(split), encoded)
        lengths = encoded.lengths
        stats[split] = {
            "sentences": len(encoded),
            "tokens": int(lengths.sum()),
            "unknown_rate": round(float((encoded.ids == UNK_ID).mean()) if len(encoded.ids) else 0.0, 4),
            "length_p50_p90_p99_max": [int(x) for x in np.percentile(lengths, [50, 90, 99, 100])],
            "truncated_to_max_length": int(truncated[split]),
            "untruncated_p50_p90_p99_max": [
                int(x) for x in np.percentile([len(t) for t in full[split]], [50, 90, 99, 100])
            ],
        }
    vocab_file.write(VOCAB, vocab_file.VocabFile(vocab, labels, settings, counts))
    write_json(
        TOKENS_REPORT,
        {
            "vocabulary": len(vocab),
            "labels": labels,
            "max_length": length,
            "max_length_rule": rule,
            "truncation": p.truncation,
            "splits": stats,
        },
    )
    print(
        f"tokenize: vocabulary {len(vocab)} tokens, labels {labels}, texts cut to {length} tokens "
        f"({p.truncation}; {truncated['train']} of {len(full['train'])} training texts were longer), "
        f"train unknown rate {stats['train']['unknown_rate']}"
    )
    return stats
