"""The served blend: the network's log-probabilities mixed with its TF-IDF reference's (classifier.evaluate.blend).

p(class | text) is proportional to p_network(class | text)^(1 - w) * p_reference(class | text)^w, w chosen on
validation from BLEND_WEIGHTS (0: the network alone; a tie keeps the smaller w). The two err differently (the
reference counts n-grams it has seen, the network reads order and unseen words through its vectors): on small
corpora of long documents the reference is ahead of the network, on short texts the network of the reference,
and the blend beats the one in front on most shapes measured (docs/evidence.md#blend-2026-12-07).

The reference travels in the served file as what it computes with: the n-grams of each block in column order
(exact features) or nothing (hashed features), each block's idf, and the logistic regression's weights. It is
computed here a text at a time, without scikit-learn's vectorizers (2 ms of per-call overhead on a one-text
request, measured on the sandbox) or its import (1.5 s of a cold `sentipipe predict`): the same analyzers (word
1-2 grams, char_wb 2-5 grams, lowercased), columns looked up or hashed as scikit-learn hashes them, sublinear
term frequency times idf, each block L2-normalised, then the logistic regression; unit tests hold its
probabilities to baseline.py's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the reference's share
HASH_BUCKETS = 2**20  # a block (words, characters) of hashed features, here and in baseline.Hashed
EPSILON = 1e-9  # added before the logarithm: a probability of 0 would make every weight's mix -inf
_CACHE = 200_000  # hashed n-grams whose columns are kept between calls


def figure(metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """Accuracy, recall averaged over the classes present, or macro-F1 of integer predictions."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if metric == "accuracy":
        return float((truth == predicted).mean())
    classes = np.unique(truth)
    recall = [float((predicted[truth == c] == c).mean()) for c in classes]
    if metric == "macro_recall":
        return float(np.mean(recall))
    precision = [float((truth[predicted == c] == c).mean()) if (predicted == c).any() else 0.0 for c in classes]
    return float(np.mean([2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(precision, recall)]))


_WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern


def word_grams(text: str) -> list[str]:
    """Word 1-2 grams of the lowercased text, as CountVectorizer(ngram_range=(1, 2)) analyses it."""
    tokens = _WORD.findall(text.lower())
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


def char_grams(text: str) -> list[str]:
    """Character 2-5 grams within word boundaries (each whitespace-separated word padded with a space), as
    CountVectorizer(analyzer="char_wb", ngram_range=(2, 5)) analyses the lowercased text: a word no longer than
    n counts once, whole, and no longer n-grams are taken from it."""
    grams: list[str] = []
    for word in text.lower().split():
        w = f" {word} "
        size = len(w)
        for n in range(2, 6):
            if n >= size:
                grams.append(w)
                break
            grams.extend([w[i : i + n] for i in range(size - n + 1)])
    return grams


ANALYZERS = (word_grams, char_grams)  # the reference's blocks, in column order (baseline.py's vectorizers' settings)


def _hashed(gram: str) -> int:
    """The column scikit-learn's FeatureHasher gives an n-gram (murmurhash3 of its UTF-8, seed 0)."""
    from sklearn.utils import murmurhash3_32  # noqa: PLC0415 - 1.5 s to import: only a hashed reference needs it

    h = murmurhash3_32(gram, seed=0)
    return (2147483647 - (HASH_BUCKETS - 1)) % HASH_BUCKETS if h == -2147483648 else abs(h) % HASH_BUCKETS


@dataclass
class LinearReference:
    """The fitted TF-IDF reference as served: features from raw text, then the logistic regression."""

    idf: list[np.ndarray]  # word block, char block (float32); 0 for an n-gram that weighs nothing
    coef: np.ndarray  # (1, features) for two classes, else (classes, features)
    intercept: np.ndarray
    vocab: list[list[str]] | None = None  # each block's n-grams in column order; None: hashed features
    _index: list[dict[str, int]] = field(default_factory=list, repr=False)
    _seen: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.idf = [np.asarray(x, dtype=np.float32) for x in self.idf]
        self.coef = np.asarray(self.coef, dtype=np.float32)
        self.intercept = np.asarray(self.intercept, dtype=np.float32)
        if self.vocab is not None:
            self._index = [{g: i for i, g in enumerate(block)} for block in self.vocab]
        self._offset = len(self.idf[0])

    @classmethod
    def from_baseline(cls, fitted) -> LinearReference:
        """From baseline.Baseline (exact or hashed features)."""
        model = fitted.model
        if fitted.streamed:
            return cls([fitted.vectorizer.idf_word, fitted.vectorizer.idf_char], model.coef_, model.intercept_)
        blocks = (fitted.vectorizer.word, fitted.vectorizer.char)
        vocab = []
        for v in blocks:
            grams = [""] * len(v.vocabulary_)
            for gram, column in v.vocabulary_.items():
                grams[column] = gram
            vocab.append(grams)
        return cls([v.idf_ for v in blocks], model.coef_, model.intercept_, vocab)

    @property
    def hashed(self) -> bool:
        return self.vocab is None

    def _hashed_columns(self, grams) -> list[int]:
        seen = self._seen
        if len(seen) > _CACHE:
            seen.clear()
        out = []
        for gram in grams:
            column = seen.get(gram)
            if column is None:
                column = seen[gram] = _hashed(gram)
            out.append(column)
        return out

    def _block(self, block: int, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One block's term counts of the texts: rows, columns (within the block), counts. Hashed n-grams that
        collide in a text add up, as in scikit-learn; n-grams outside an exact vocabulary are dropped."""
        analyzer, rows, grams, counts = ANALYZERS[block], [], [], []
        for row, text in enumerate(texts):
            counted = Counter(analyzer(text))
            rows.extend(repeat(row, len(counted)))
            grams.extend(counted)
            counts.extend(counted.values())
        row_ids = np.asarray(rows, dtype=np.int64)
        tf = np.asarray(counts, dtype=np.float64)
        if self.vocab is not None:
            columns = np.fromiter(map(self._index[block].get, grams, repeat(-1)), dtype=np.int64, count=len(grams))
            known = columns >= 0
            return row_ids[known], columns[known], tf[known]
        key = row_ids * HASH_BUCKETS + np.asarray(self._hashed_columns(grams), dtype=np.int64)
        key, inverse = np.unique(key, return_inverse=True)
        return key // HASH_BUCKETS, key % HASH_BUCKETS, np.bincount(inverse, weights=tf)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities as scikit-learn's logistic regression gives them (sigmoid for two classes).

        Every text of the call at once: each block's features are sublinear TF times IDF, normalised to unit
        length per text, then weighted by the coefficients, with one array operation each over all the texts'
        n-grams, not a score of small ones a text (docs/evidence.md#reference-batched-2026-12-07)."""
        n = len(texts)
        scores = np.tile(self.intercept.astype(np.float64), (n, 1))
        for block in (0, 1):
            rows, columns, tf = self._block(block, texts)
            value = (1.0 + np.log(tf)) * self.idf[block][columns]
            norm = np.sqrt(np.bincount(rows, weights=value * value, minlength=n))
            value = value / np.where(norm > 0, norm, 1.0)[rows]
            for k in range(self.coef.shape[0]):
                weights = value * self.coef[k, columns + block * self._offset]
                scores[:, k] += np.bincount(rows, weights=weights, minlength=n)
        if self.coef.shape[0] == 1:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def to_bundle(self) -> dict:
        """What the served file carries: arrays (predictor.py stores them as tensors) and each block's n-grams as
        one string, a line each: torch's safe unpickler is slow on 157k separate strings (`Predictor.load` took 1.56 s
        with lists, 0.48 s with one string a block: docs/evidence.md#make-run-timing-2026-12-07).
        No n-gram holds a line break (words are runs of letters and digits, char_wb n-grams are cut from
        whitespace-split words)."""
        bundle: dict = {
            "idf_word": self.idf[0],
            "idf_char": self.idf[1],
            "coef": self.coef,
            "intercept": self.intercept,
        }
        if self.vocab is not None:
            for name, block in zip(("vocab_word", "vocab_char"), self.vocab, strict=True):
                lines = "\n".join(block)
                if lines.count("\n") != max(len(block) - 1, 0):
                    raise ValueError(f"an n-gram of {name} holds a line break")
                bundle[name] = lines
        return bundle

    @classmethod
    def from_bundle(cls, bundle: dict) -> LinearReference:
        """`to_bundle`'s dict; n-grams as lists (the files of 2026-12-07) read as well as lines."""
        vocab = [_lines(bundle["vocab_word"]), _lines(bundle["vocab_char"])] if "vocab_word" in bundle else None
        arrays = {k: np.asarray(bundle[k]) for k in ("idf_word", "idf_char", "coef", "intercept")}
        return cls([arrays["idf_word"], arrays["idf_char"]], arrays["coef"], arrays["intercept"], vocab)

    def save(self, path) -> None:
        """An .npz (no pickle) for handing the fitted reference from baseline.py's process to evaluate's."""
        arrays = {"idf_word": self.idf[0], "idf_char": self.idf[1], "coef": self.coef, "intercept": self.intercept}
        if self.vocab is not None:
            arrays.update(vocab_word=np.array(self.vocab[0], dtype=str), vocab_char=np.array(self.vocab[1], dtype=str))
        np.savez(path, **arrays)

    @classmethod
    def read(cls, source) -> LinearReference:
        """From `save`'s file, or its arrays (a mapping of the same names)."""
        if not isinstance(source, Mapping):
            with np.load(source) as f:
                return cls.read({k: f[k] for k in f.files})
        vocab = [source["vocab_word"].tolist(), source["vocab_char"].tolist()] if "vocab_word" in source else None
        return cls([source["idf_word"], source["idf_char"]], source["coef"], source["intercept"], vocab)


def _lines(block: str | list[str]) -> list[str]:
    if isinstance(block, list):
        return block
    return block.split("\n") if block else []


def mix(network: np.ndarray, reference: np.ndarray, weight: float) -> np.ndarray:
    """The blend's probabilities: softmax((1 - w) log p_network + w log p_reference)."""
    if weight == 0:
        return network
    scores = (1 - weight) * np.log(network + EPSILON) + weight * np.log(reference + EPSILON)
    scores -= scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(network.dtype, copy=False)


def by_weight(network: np.ndarray, reference: np.ndarray, truth: np.ndarray, metric: str) -> dict[float, float]:
    """Each weight's validation figure (`metric`: accuracy, macro_recall or macro_f1)."""
    return {w: figure(metric, truth, mix(network, reference, w).argmax(1)) for w in BLEND_WEIGHTS}


def best_weight(figures: dict[float, float]) -> float:
    """The weight with the best figure; a tie keeps the smaller (the network alone, when nothing helps)."""
    return max(figures, key=lambda w: (figures[w], -w))


def crossfit(network: np.ndarray, reference: np.ndarray, truth: np.ndarray, metric: str, seed: int = 13):
    """Validation predictions free of the weight's choice: the rows split in two at random, each half predicted
    at the weight the other half chose; and the two weights."""
    half = np.zeros(len(truth), dtype=bool)
    half[np.random.default_rng(seed).permutation(len(truth))[: len(truth) // 2]] = True
    predicted, weights = np.zeros(len(truth), dtype=np.int64), []
    for part in (half, ~half):
        other = ~part
        w = best_weight(by_weight(network[other], reference[other], truth[other], metric))
        predicted[part] = mix(network[part], reference[part], w).argmax(1)
        weights.append(w)
    return predicted, weights
