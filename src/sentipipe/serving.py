"""What both tasks' served models share: reading inputs, client errors, logging a models-from-code pyfunc.

A served model takes a DataFrame with a named text column, a list of strings or
one string (over REST: `dataframe_split` / `dataframe_records` with the column,
or `inputs` with a list of strings). A frame without the column, or a value
that is not a string (a number, null), is refused with the column or row named;
over REST that is an HTTP 400.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

import sentipipe
from sentipipe.errors import SentipipeError

TEXT_COLUMN = "text"


def texts_from_input(model_input: Any, columns: Sequence[str] = (TEXT_COLUMN,)) -> list[str]:
    """The texts of any accepted input shape, checked row by row; `columns`: the names a frame may use."""
    if isinstance(model_input, pd.DataFrame):
        found = [c for c in columns if c in model_input.columns]
        if found:
            values = model_input[found[0]].tolist()
        elif list(model_input.columns) == [0]:  # a list or a string, framed by MLflow's schema enforcement
            values = model_input[0].tolist()
        else:
            wanted = " or ".join(repr(c) for c in columns)
            raise SentipipeError(f"input needs a {wanted} column; got columns {list(map(str, model_input.columns))}")
    elif isinstance(model_input, pd.Series):
        values = model_input.tolist()
    elif isinstance(model_input, str):
        values = [model_input]
    elif isinstance(model_input, (list, tuple, np.ndarray)):
        values = list(model_input)
    elif isinstance(model_input, dict) and any(c in model_input for c in columns):
        values = list(np.atleast_1d(model_input[next(c for c in columns if c in model_input)]))
    else:
        raise SentipipeError(f"expected text, a list of texts or a DataFrame; got {type(model_input).__name__}")
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise SentipipeError(f"row {i}: text is missing (null)")
        if not isinstance(value, str):
            raise SentipipeError(f"row {i}: text must be a string, got {type(value).__name__} ({value!r:.40})")
    return values


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
