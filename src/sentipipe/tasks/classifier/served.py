"""The classifier as served: raw texts in, a label and one probability per class out, one row per text.

Free of MLflow, so the command line can load a cached model without MLflow's
start-up; the MLflow pyfunc (pyfunc.py) is this class with MLflow's predict().
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sentipipe.errors import SentipipeError
from sentipipe.tasks.classifier.explain import explain
from sentipipe.tasks.classifier.predictor import Predictor

TEXT_COLUMN = "text"
MAX_BATCH = 256
PARAMS = {"explain": False}  # per request: each token's contribution to each class (occlusion)


def prediction_rows(probs: np.ndarray, labels: Sequence[str]) -> list[dict]:
    """`label` and `prob_<class>` for every class, one row per text."""
    names = [f"prob_{name}" for name in labels]
    return [{"label": labels[int(row.argmax())], **dict(zip(names, map(float, row), strict=True))} for row in probs]


class ServedClassifier:
    column = TEXT_COLUMN

    def load_context(self, context) -> None:
        self.predictor = Predictor.load(context.artifacts["predictor"], device="cpu")

    def scored(self, texts: list[str]) -> tuple[list[dict], dict]:
        """Rows as `predict_rows` gives them, and each text's features for the prediction log (one pass)."""
        probs, features = self.predictor.predict_with_features(texts, batch_size=MAX_BATCH)
        return prediction_rows(probs, self.predictor.labels), {**features, "probs": probs}

    def predict_rows(self, texts: list[str], params: dict) -> list[dict]:
        """Rows of label and probabilities; with params {"explain": true}, each token's contribution too."""
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise SentipipeError(f"unknown parameter(s) {unknown}; the classifier takes {sorted(PARAMS)}")
        explained = params.get("explain", False)
        if not isinstance(explained, bool):
            raise SentipipeError(f"explain must be true or false, got {explained!r}")
        if not explained:
            return prediction_rows(self.predictor.predict_proba(texts, batch_size=MAX_BATCH), self.predictor.labels)
        out = []
        for e in explain(self.predictor, texts):
            (row,) = prediction_rows(np.array([e["probabilities"]]), self.predictor.labels)
            out.append({**row, "tokens": e["tokens"], "contributions": e["contributions"]})
        return out
