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
from mlflow.types import ParamSchema, ParamSpec

from sentipipe.errors import SentipipeError
from sentipipe.serving import client_error, log_pyfunc, text_schema, texts_from_input
from sentipipe.tasks.classifier.served import MAX_BATCH, PARAMS, TEXT_COLUMN, ServedClassifier


def predictions_frame(probs: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"label": [labels[i] for i in probs.argmax(axis=1)]} if len(probs) else {"label": []})
    for j, name in enumerate(labels):
        frame[f"prob_{name}"] = probs[:, j].astype(np.float64)
    return frame


class ClassifierModel(ServedClassifier, mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        try:
            texts = texts_from_input(model_input)
            if params and params.get("explain"):
                return pd.DataFrame(self.predict_rows(texts, params))
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
        signature=ModelSignature(
            inputs=text_schema(),
            outputs=infer_signature(example, fake).outputs,
            params=ParamSchema([ParamSpec(k, "boolean", v) for k, v in PARAMS.items()]),
        ),
        input_example=example,
    )
