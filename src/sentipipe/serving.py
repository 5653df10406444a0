"""What both tasks' served models share: reading inputs, client errors, logging a models-from-code pyfunc.

A served model's signature names one string column (`text` for the classifier,
`prompt` for the generator), so every input form of MLflow's scoring protocol
works: `dataframe_split`, `dataframe_records`, `instances`, `inputs` (a list of
strings, or records), CSV with that header; and in Python a DataFrame with the
column or a list of strings. MLflow's schema check leaves values as they came,
so `texts_from_input` checks each row itself: a null, a number, a list or a
mapping where a text belongs is refused with its row named (HTTP 400).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.types import ColSpec, Schema

import sentipipe
from sentipipe.errors import SentipipeError

TEXT_COLUMN = "text"


class Served(Protocol):
    """What the server needs of a task's python model: its input column and rows in, rows out."""

    column: str

    def predict_rows(self, texts: list[str], params: dict) -> list[dict]: ...


def check_texts(values: list, column: str = TEXT_COLUMN) -> list[str]:
    """Each row holds a text: a null, a number, a list or a mapping is refused with its row named."""
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise SentipipeError(f"row {i}: {column} is missing (null)")
        if not isinstance(value, str):
            raise SentipipeError(f"row {i}: {column} must be a string, got {type(value).__name__} ({value!r:.40})")
    return values


def texts_from_input(model_input: Any, column: str = TEXT_COLUMN) -> list[str]:
    """The texts of any accepted input shape (a frame with the column, a list, one string), checked row by row."""
    if isinstance(model_input, pd.DataFrame):
        if column not in model_input.columns:
            if model_input.empty:
                return []
            raise SentipipeError(f"input needs a {column!r} column; got columns {list(map(str, model_input.columns))}")
        values = model_input[column].tolist()
    elif isinstance(model_input, pd.Series):
        values = model_input.tolist()
    elif isinstance(model_input, str):
        values = [model_input]
    elif isinstance(model_input, (list, tuple, np.ndarray)):
        values = list(model_input)
    else:
        raise SentipipeError(f"expected a list of texts or a DataFrame; got {type(model_input).__name__}")
    return check_texts(values, column)


def text_schema(column: str = TEXT_COLUMN) -> Schema:
    """The input a served model takes: one string column."""
    return Schema([ColSpec("string", column)])


def client_error(exc: SentipipeError) -> MlflowException:
    """A bad request: the scoring server answers HTTP 400 with the message, not 500."""
    return MlflowException.invalid_parameter_value(str(exc))


def pip_requirements() -> list[str]:
    return [
        f"{name}=={version(name)}" for name in ("mlflow", "torch", "spacy", "pandas", "numpy", "pydantic", "pyyaml")
    ]


def log_pyfunc(code_file: Path, artifacts: dict[str, str], name: str = "model", **kwargs):
    """Log a models-from-code pyfunc: `code_file` builds the model, the package travels as code."""
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(code_file),
        artifacts=artifacts,
        code_paths=[str(Path(sentipipe.__file__).parent)],
        pip_requirements=pip_requirements(),
        **kwargs,
    )
