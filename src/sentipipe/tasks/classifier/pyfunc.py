"""The classifier as an MLflow pyfunc: raw text in, a label and one probability per class out.

Input: a `text` column, or a list of strings (see sentipipe.serving). An empty
or whitespace-only text is valid and gets the prediction of an empty sentence
(the model sees a single unknown token). Output: a DataFrame with `label` and
`prob_<class>` for every class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature

from sentipipe.errors import SentipipeError
from sentipipe.serving import TEXT_COLUMN, client_error, log_pyfunc, text_schema, texts_from_input
from sentipipe.tasks.classifier.predictor import Predictor

MAX_BATCH = 256


def predictions_frame(probs: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"label": [labels[i] for i in probs.argmax(axis=1)]} if len(probs) else {"label": []})
    for j, name in enumerate(labels):
        frame[f"prob_{name}"] = probs[:, j].astype(np.float64)
    return frame


def prediction_rows(probs: np.ndarray, labels: Sequence[str]) -> list[dict]:
    """The same as predictions_frame, as plain rows (what the server answers, without pandas)."""
    names = [f"prob_{name}" for name in labels]
    return [{"label": labels[int(row.argmax())], **dict(zip(names, map(float, row), strict=True))} for row in probs]


class ClassifierModel(mlflow.pyfunc.PythonModel):
    column = TEXT_COLUMN

    def load_context(self, context) -> None:
        self.predictor = Predictor.load(context.artifacts["predictor"], device="cpu")

    def predict_rows(self, texts: list[str], params: dict) -> list[dict]:
        if params:
            raise SentipipeError(f"the classifier takes no params; got {sorted(params)}")
        return prediction_rows(self.predictor.predict_proba(texts, batch_size=MAX_BATCH), self.predictor.labels)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        try:
            texts = texts_from_input(model_input)
        except SentipipeError as exc:
            raise client_error(exc) from None
        probs = self.predictor.predict_proba(texts, batch_size=MAX_BATCH)
        return predictions_frame(probs, self.predictor.labels)


def log_model(predictor_path: Path, labels: Sequence[str], name: str = "model"):
    """Log the predictor as a models-from-code pyfunc with its own code and a signature."""
    example = pd.DataFrame({TEXT_COLUMN: ["a gripping, beautifully acted film", "dull and far too long"]})
    fake = predictions_frame(np.full((2, len(labels)), 1.0 / len(labels)), labels)
    return log_pyfunc(
        Path(__file__).with_name("model_code.py"),
        {"predictor": str(predictor_path)},
        name=name,
        signature=ModelSignature(inputs=text_schema(), outputs=infer_signature(example, fake).outputs),
        input_example=example,
    )
