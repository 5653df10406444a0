"""The reference every classifier must beat: TF-IDF word and character n-grams, logistic regression.

One definition, shared by the evaluate stage, the registry's baseline gate and
the benches: word 1-2 grams and character 2-5 grams (within word boundaries),
sublinear term frequencies, L2-regularised logistic regression whose C is
chosen on the validation split from the same grid every time. The classifier's
own knobs are chosen on validation data too, so the two get the same kind of
tuning; test data decides nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)


@dataclass
class Baseline:
    """A fitted reference: its C (chosen on validation accuracy) and every candidate's validation accuracy."""

    word: TfidfVectorizer
    char: TfidfVectorizer
    model: LogisticRegression
    c: float
    val_accuracy_by_c: dict[float, float]

    def features(self, texts: Sequence[str]):
        return hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities in the order of the classes' indices (the labels the classifier uses)."""
        return self.model.predict_proba(self.features(texts))


def fit(
    train_texts: Sequence[str], train_labels: np.ndarray, val_texts: Sequence[str], val_labels: np.ndarray
) -> Baseline:
    """Fit the features on train, try every C of the grid, keep the best on validation (ties: the smaller C)."""
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    x_train = hstack([word.fit_transform(train_texts), char.fit_transform(train_texts)]).tocsr()
    x_val = hstack([word.transform(val_texts), char.transform(val_texts)]).tocsr()
    scores, models = {}, {}
    for c in C_GRID:
        models[c] = LogisticRegression(C=c, max_iter=3000).fit(x_train, train_labels)
        scores[c] = float((models[c].predict(x_val) == np.asarray(val_labels)).mean())
    best = max(C_GRID, key=lambda c: (scores[c], -c))
    return Baseline(word, char, models[best], best, scores)
