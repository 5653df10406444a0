"""The reference every classifier must beat: TF-IDF word and character n-grams, logistic regression.

One definition, shared by the evaluate stage, the registry's baseline gate and
the benches: word 1-2 grams and character 2-5 grams (within word boundaries),
sublinear term frequencies, L2-regularised logistic regression whose C is
chosen on the validation split from the same grid every time, on the figure the
registry judges by (accuracy, or recall averaged over the classes for a corpus
judged on it); with imbalanced classes, balanced class weights are tried too.
The classifier's own knobs are chosen on validation data too, so the two get
the same kind of tuning; test data decides nothing.

Past `classifier.evaluate.baseline_stream_chars` characters of training text
(a vocabulary of every character n-gram no longer fits a bounded process:
3.8 GB at IMDB's 22k reviews) the same features are hashed (2^20 buckets a
block, no vocabulary; min_df 2 on the characters as before) and the fit reads a seeded random sample of
the training rows of at most `baseline_sample_chars` characters, streamed from
the Parquet file (`fit_sampled`): memory stays bounded whatever the corpus, and
docs/evidence.md gives what hashing and the sample cost in accuracy.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from sentipipe.io import parquet_batches
from sentipipe.tasks.classifier.blend import HASH_BUCKETS, figure
from sentipipe.tasks.classifier.reference import METRICS

C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)


IMBALANCE = 1.2  # largest over smallest class count above which balanced class weights join the grid


CHUNK = 1000  # texts whose features are built at a time


@dataclass
class Exact:
    """The TF-IDF vectorizers, fitted on the training texts in memory."""

    word: TfidfVectorizer
    char: TfidfVectorizer

    def transform(self, texts: Sequence[str]):
        return hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr()


@dataclass
class Hashed:
    """The same features and weighting without a vocabulary: n-grams hashed to buckets (colliding n-grams add up),
    sublinear term frequency times the idf of a sample of the training texts, each block L2-normalised."""

    idf_word: np.ndarray
    idf_char: np.ndarray

    WORD = HashingVectorizer(ngram_range=(1, 2), alternate_sign=False, norm=None, n_features=HASH_BUCKETS)
    CHAR = HashingVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), alternate_sign=False, norm=None, n_features=HASH_BUCKETS
    )

    @staticmethod
    def counts(texts: Sequence[str]) -> list:
        """Each block's raw n-gram counts (CSR)."""
        return [v.transform(texts).astype(np.float32) for v in (Hashed.WORD, Hashed.CHAR)]

    @classmethod
    def fit(cls, texts: Sequence[str]) -> tuple[Hashed, int]:
        """The idf of each block (sklearn's smoothed formula) from the training texts, counted CHUNK at a time;
        and how many counts there were (a bound on the features' non-zeros)."""
        df = [np.zeros(HASH_BUCKETS, dtype=np.int64), np.zeros(HASH_BUCKETS, dtype=np.int64)]
        nnz = 0
        for i in range(0, len(texts), CHUNK):
            for d, x in zip(df, cls.counts(texts[i : i + CHUNK]), strict=True):
                d += np.bincount(x.indices, minlength=HASH_BUCKETS)
                nnz += x.nnz
        idf = [(np.log((1 + len(texts)) / (1 + d)) + 1).astype(np.float32) for d in df]
        idf[1][df[1] < 2] = 0  # the characters' min_df=2: an n-gram of one training text weighs nothing
        return cls(*idf), nnz

    def weigh(self, counts: list):
        """Counts -> features: sublinear term frequency times idf, each block L2-normalised, side by side."""
        for x, idf in zip(counts, (self.idf_word, self.idf_char), strict=True):
            x.data = (1 + np.log(x.data)) * idf[x.indices]
            x.eliminate_zeros()
            normalize(x, copy=False)
        return hstack(counts, format="csr")

    def transform(self, texts: Sequence[str]):
        return self.weigh(self.counts(texts))


@dataclass
class Baseline:
    """A fitted reference: its C and class weights (chosen on validation) and every candidate's figure."""

    vectorizer: Exact | Hashed
    model: LogisticRegression
    c: float
    val_by_candidate: dict[str, float]  # every candidate's validation figure (`metric`), by "C" or "C balanced"
    metric: str = "accuracy"
    class_weight: str = "none"
    sample: dict | None = None  # fit_sampled: the rows and characters it was fitted on, of how many rows

    @property
    def streamed(self) -> bool:
        return isinstance(self.vectorizer, Hashed)

    def features(self, texts: Sequence[str]):
        return self.vectorizer.transform(texts)

    def predict_proba(self, texts: Sequence[str] | Path) -> np.ndarray:
        """Probabilities in the order of the classes' indices (the labels the classifier uses), CHUNK texts'
        features at a time (the features of a hundred thousand reviews would take gigabytes); texts, or a
        Parquet file whose `text` column is read CHUNK rows at a time."""
        parts = [self.model.predict_proba(self.features(chunk)) for chunk in chunks(texts)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.model.classes_)))


def chunks(texts: Sequence[str] | Path):
    """The texts CHUNK at a time: slices of a sequence, or batches of a Parquet file's `text` column (so a split
    of a hundred thousand reviews is never held whole)."""
    if isinstance(texts, Path):
        for batch in parquet_batches(texts, ["text"], CHUNK):
            yield [str(t) for t in batch.column(0).to_pylist()]
    else:
        for i in range(0, len(texts), CHUNK):
            yield texts[i : i + CHUNK]


def grid(train_labels: np.ndarray) -> list[tuple[float, str]]:
    """Every (C, class weights) candidate: the C grid, and balanced weights too when the classes are imbalanced."""
    counts = np.bincount(np.asarray(train_labels))
    counts = counts[counts > 0]
    weights = ["none", "balanced"] if counts.max() > IMBALANCE * counts.min() else ["none"]
    return [(c, w) for w in weights for c in C_GRID]


def fit(
    train_texts: Sequence[str],
    train_labels: np.ndarray,
    val_texts: Sequence[str],
    val_labels: np.ndarray,
    metric: str = "accuracy",
) -> Baseline:
    """Fit the features on train, try every candidate, keep the best on validation `metric` (ties: the smaller C)."""
    if metric not in METRICS:
        raise ValueError(f"baseline metric {metric!r}: one of {METRICS}")
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    x_train = hstack([word.fit_transform(train_texts), char.fit_transform(train_texts)]).tocsr()
    x_val = hstack([word.transform(val_texts), char.transform(val_texts)]).tocsr()
    return _fit_grid(Exact(word, char), x_train, train_labels, x_val, val_labels, metric)


def _fit_grid(vectorizer, x_train, train_labels: np.ndarray, x_val, val_labels: np.ndarray, metric: str) -> Baseline:
    """Every candidate fitted from a cold start (a warm start from the last C let L-BFGS stop at once, within its
    tolerance, and left most of the grid at the previous C's answer), scored on validation; the best kept."""
    scores, best, kept = {}, None, None
    candidates = grid(train_labels)
    for c, weights in candidates:
        model = LogisticRegression(C=c, max_iter=3000, class_weight=None if weights == "none" else weights)
        scores[c, weights] = figure(metric, val_labels, model.fit(x_train, train_labels).predict(x_val))
        if best is None or _rank(scores, (c, weights)) > _rank(scores, best):
            best, kept = (c, weights), model
    return Baseline(vectorizer, kept, best[0], _by_candidate(scores), metric, best[1])


def _features(vectorizer: Hashed, texts: Sequence[str], bound: int) -> csr_matrix:
    """The texts' features as one CSR matrix, built CHUNK texts at a time into arrays of `bound` non-zeros (pages
    past the last one written are never touched): the peak is the matrix and one chunk, not twice the matrix.
    Its values are float32 (as `weigh` computes them) held as float64, the type L-BFGS fits in: float32 data
    made scikit-learn copy the whole matrix (data and indices) at every fit, 20 bytes a non-zero instead of 12."""
    data, indices = np.empty(bound, dtype=np.float64), np.empty(bound, dtype=np.int32)
    indptr, at = np.zeros(len(texts) + 1, dtype=np.int32 if bound < 2**31 else np.int64), 0
    for i in range(0, len(texts), CHUNK):
        x = vectorizer.transform(texts[i : i + CHUNK])
        data[at : at + x.nnz], indices[at : at + x.nnz] = x.data, x.indices
        indptr[i + 1 : i + 1 + x.shape[0]] = x.indptr[1:] + at
        at += x.nnz
    return csr_matrix(
        (data[:at], indices[:at].astype(indptr.dtype, copy=False), indptr), shape=(len(texts), 2 * HASH_BUCKETS)
    )


def _by_candidate(scores: dict) -> dict[str, float]:
    """Each candidate's validation figure, keyed "C" or "C balanced"."""
    return {(f"{c:g}" if w == "none" else f"{c:g} {w}"): v for (c, w), v in scores.items()}


def _rank(scores: dict, key: tuple[float, str]) -> tuple:
    """Higher is better: the validation figure, then unweighted classes, then the smaller C."""
    return scores[key], key[1] == "none", -key[0]


def fit_sampled(
    train: Path,
    classes: Sequence[str],
    val_texts: Sequence[str] | Path,
    val_labels: np.ndarray,
    metric: str = "accuracy",
    max_chars: int = 30_000_000,
    seed: int = 13,
) -> Baseline:
    """The baseline of a training split too large for `fit`: hashed features of a seeded random sample of its rows
    (at most `max_chars` characters), read from Parquet (`text`, `label`) in batches; the same grid and choice.
    Validation texts may be a Parquet file, read CHUNK rows at a time."""
    source = pq.ParquetFile(train)
    lengths, labels = [], []
    index = {c: i for i, c in enumerate(classes)}
    for batch in parquet_batches(source, ["text", "label"]):
        lengths.append(pc.utf8_length(batch.column(0)).to_numpy(zero_copy_only=False))
        labels.append(np.array([index[str(v)] for v in batch.column(1).to_pylist()], dtype=np.int64))
    lengths, labels = np.concatenate(lengths), np.concatenate(labels)
    order = np.random.default_rng(seed).permutation(len(lengths))
    keep = np.zeros(len(lengths), dtype=bool)
    keep[order[: max(1, int(np.searchsorted(np.cumsum(lengths[order]), max_chars, side="right")))]] = True
    texts, start = [], 0
    for batch in parquet_batches(source, ["text"]):
        rows = np.flatnonzero(keep[start : start + batch.num_rows])
        texts.extend(str(t) for t in batch.column(0).take(pa.array(rows)).to_pylist())
        start += batch.num_rows
    vectorizer, bound = Hashed.fit(texts)  # a pass to count, a pass to weigh: never the counts and features at once
    x_train = _features(vectorizer, texts, bound)
    del texts
    candidates, models = grid(labels[keep]), {}
    with tempfile.TemporaryDirectory(prefix="sentipipe-baseline-") as spill:
        for i, (c, weights) in enumerate(candidates):
            model = LogisticRegression(C=c, max_iter=3000, class_weight=None if weights == "none" else weights)
            models[c, weights] = _slim(model.fit(x_train, labels[keep]), Path(spill) / f"{i}.npy")
        del x_train
        predicted: dict = {k: [] for k in candidates}  # validation read once, CHUNK texts at a time, for every one
        for chunk in chunks(val_texts):
            x_val = vectorizer.transform(chunk)
            for k, model in models.items():
                predicted[k].append(model.predict(x_val))
        scores = {k: figure(metric, val_labels, np.concatenate(v)) for k, v in predicted.items()}
        best = max(candidates, key=lambda k: _rank(scores, k))
        kept = models.pop(best)
        kept.coef_ = np.array(kept.coef_)  # in memory: the spilled files go with the directory
        models.clear()  # the others' maps closed before their files are removed
    sample = {"rows": int(keep.sum()), "of": len(keep), "characters": int(lengths[keep].sum())}
    return Baseline(vectorizer, kept, best[0], _by_candidate(scores), metric, best[1], sample)


def _slim(model: LogisticRegression, spill: Path) -> LogisticRegression:
    """The fitted model with float32 weights, written to `spill` and mapped from there: every candidate is kept
    until validation has scored them all, and twenty-two candidates' weights held in memory (8 MB each over 2^21
    features) had raised the grid's peak by 0.18 GB, on top of the training features and L-BFGS's workspace."""
    np.save(spill, model.coef_.astype(np.float32))
    model.coef_, model.intercept_ = np.load(spill, mmap_mode="r"), model.intercept_.astype(np.float32)
    return model


def reference(request: dict) -> tuple[dict, dict[str, np.ndarray], Baseline]:
    """The evaluate stage's baseline, from the prepared split files a request names: exact, or past
    `stream_chars` characters of training text `fit_sampled` with `sample_chars`; what was chosen, the
    probabilities of val and test, and the fitted reference."""
    pa.set_memory_pool(pa.system_memory_pool())  # memory Arrow frees goes back to the system, not a pool
    labels = {s: pq.read_table(request[s], columns=["label"]).column(0).to_pylist() for s in ("val", "test")}
    trained = pq.read_table(request["train"], columns=["label"]).column(0).unique().to_pylist()
    classes = sorted({str(v) for v in trained})  # as tokenize orders the model's classes
    index = {c: i for i, c in enumerate(classes)}
    y = {s: np.array([index[str(v)] for v in labels[s]], dtype=np.int64) for s in ("val", "test")}
    train = pq.ParquetFile(request["train"])
    chars = sum(pc.sum(pc.utf8_length(b.column(0))).as_py() or 0 for b in parquet_batches(train, ["text"]))
    if chars > request["stream_chars"]:  # val and test too are read CHUNK rows at a time, never held whole
        cap = request["sample_chars"]
        texts = {s: Path(request[s]) for s in ("val", "test")}
        fitted = fit_sampled(Path(request["train"]), classes, texts["val"], y["val"], request["metric"], cap)
    else:
        texts = {s: [str(t) for t in pq.read_table(request[s], columns=["text"]).column(0).to_pylist()] for s in y}
        frame = train.read(columns=["text", "label"]).to_pandas()
        train_y = frame["label"].astype(str).map(index).to_numpy(dtype=np.int64)
        fitted = fit(frame["text"].astype(str).tolist(), train_y, texts["val"], y["val"], request["metric"])
    summary = {
        "classes": classes,
        "C": fitted.c,
        "class_weight": fitted.class_weight,
        "features": "hashed" if fitted.streamed else "exact",
        "sample": fitted.sample or "all training rows",
        "val_by_candidate": fitted.val_by_candidate,
    }
    return summary, {s: fitted.predict_proba(texts[s]) for s in ("val", "test")}, fitted


if __name__ == "__main__":  # the evaluate stage runs `reference` here, in a process without the network's memory
    import json
    import sys

    from sentipipe.tasks.classifier.blend import LinearReference

    job = json.loads(sys.argv[1])
    chosen, probabilities, fitted = reference(job)
    np.savez(Path(job["out"]) / "probabilities.npz", **probabilities)
    LinearReference.from_baseline(fitted).save(Path(job["out"]) / "reference.npz")  # what a served blend carries
    Path(job["out"], "summary.json").write_text(json.dumps(chosen))
