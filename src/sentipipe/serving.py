"""The MLflow pyfunc model: raw text in, a label and one probability per class out.

Input: a DataFrame with a `text` column, a list of strings or one string (over
REST: `dataframe_split` / `dataframe_records` with a `text` column, or `inputs`
with a list of strings). A frame without a `text` column, or a value that is
not a string (a number, null), is refused with the column or row named; over
REST that is an HTTP 400. An empty or whitespace-only text is valid and gets
the prediction of an empty sentence (the model sees a single unknown token).
Output: a DataFrame with `label` and `prob_<class>` for every class.

The generator's pyfunc (GeneratorModel, below) takes prompts the same ways (a
`prompt` or `text` column) and per-request params max_length, temperature,
top_k and seed; it answers `prompt`, `generated`, `text` and `unknown_units`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from sentipipe.errors import SentipipeError

TEXT_COLUMN = "text"
MAX_BATCH = 256


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


def predictions_frame(probs: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"label": [labels[i] for i in probs.argmax(axis=1)]} if len(probs) else {"label": []})
    for j, name in enumerate(labels):
        frame[f"prob_{name}"] = probs[:, j].astype(np.float64)
    return frame


# MLflow asks for type hints on predict() when the class is defined; the signature
# logged with the model and the checks in texts_from_input are the contract instead.
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")


class SentimentModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from sentipipe.predictor import Predictor

        self.predictor = Predictor.load(context.artifacts["predictor"], device="cpu")

    def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException

        try:
            texts = texts_from_input(model_input)
        except SentipipeError as exc:  # a client error: HTTP 400 from the scoring server, not 500
            raise MlflowException.invalid_parameter_value(str(exc)) from None
        probs = self.predictor.predict_proba(texts, batch_size=MAX_BATCH)
        return predictions_frame(probs, self.predictor.labels)


def pip_requirements() -> list[str]:
    return [
        f"{name}=={version(name)}" for name in ("mlflow", "torch", "spacy", "pandas", "numpy", "pydantic", "pyyaml")
    ]


def log_model(predictor_path: Path, labels: Sequence[str], name: str = "model"):
    """Log the predictor as a models-from-code pyfunc with its own code and a signature."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    import sentipipe

    package_dir = Path(sentipipe.__file__).parent
    example = pd.DataFrame({TEXT_COLUMN: ["a gripping, beautifully acted film", "dull and far too long"]})
    fake = predictions_frame(np.full((2, len(labels)), 1.0 / len(labels)), labels)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(package_dir / "pyfunc_model.py"),
        artifacts={"predictor": str(predictor_path)},
        code_paths=[str(package_dir)],
        # One unnamed input column of any type: a named string column would refuse a
        # plain list of strings, and MLflow's string enforcement silently turns numbers
        # and nulls into text. predict() checks the values itself, row by row.
        signature=ModelSignature(inputs=Schema([ColSpec(AnyType())]), outputs=infer_signature(example, fake).outputs),
        input_example=example,
        pip_requirements=pip_requirements(),
    )


# ---------------------------------------------------------------- the generator task

PROMPT_COLUMN = "prompt"
SAMPLE_DEFAULTS = {"max_length": 200, "temperature": 0.8, "top_k": 0, "seed": 13}
GENERATION_LIMITS = {"max_length": (1, 10_000), "temperature": (0.0, 100.0), "top_k": (0, 1_000_000)}


def generation_options(params: dict | None, defaults: dict) -> dict:
    """Per-request options over the logged defaults, each checked (a bad one is a client error)."""
    options = dict(defaults)
    for key, value in (params or {}).items():
        if key not in options:
            raise SentipipeError(f"unknown parameter {key!r}; one of {sorted(options)}")
        options[key] = value
    for key, (low, high) in GENERATION_LIMITS.items():
        if not low <= options[key] <= high:
            raise SentipipeError(f"{key} must be between {low} and {high}, got {options[key]!r}")
    return {
        "max_length": int(options["max_length"]),
        "temperature": float(options["temperature"]),
        "top_k": int(options["top_k"]),
        "seed": int(options["seed"]),
    }


class GeneratorModel(mlflow.pyfunc.PythonModel):
    """Prompts in (a `prompt` or `text` column, a list or one string); prompt, generated text and the prompt's
    unknown-unit count out. Params per request: max_length, temperature, top_k, seed."""

    def load_context(self, context) -> None:
        from sentipipe.generation import Generator

        self.generator = Generator.load(context.artifacts["generator"], device="cpu")
        self.defaults = dict((context.model_config or {}).get("generation", SAMPLE_DEFAULTS))

    def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException

        try:
            prompts = texts_from_input(model_input, (PROMPT_COLUMN, TEXT_COLUMN))
            options = generation_options(params, self.defaults)
        except SentipipeError as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from None
        return self.generator.generate_frame(prompts, **options)


def log_generator(generator_path: Path, sample, name: str = "model"):
    """Log the generator as a models-from-code pyfunc; `sample` (SampleParams) gives the default options."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType

    import sentipipe

    package_dir = Path(sentipipe.__file__).parent
    defaults = {key: getattr(sample, key) for key in SAMPLE_DEFAULTS}
    types = {"max_length": "long", "temperature": "double", "top_k": "long", "seed": "long"}
    signature = ModelSignature(
        inputs=Schema([ColSpec(AnyType())]),
        outputs=Schema(
            [
                ColSpec("string", "prompt"),
                ColSpec("string", "generated"),
                ColSpec("string", "text"),
                ColSpec("long", "unknown_units"),
            ]
        ),
        params=ParamSchema([ParamSpec(k, types[k], v) for k, v in defaults.items()]),
    )
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(package_dir / "pyfunc_generator.py"),
        artifacts={"generator": str(generator_path)},
        code_paths=[str(package_dir)],
        model_config={"generation": defaults},
        signature=signature,
        input_example=pd.DataFrame({PROMPT_COLUMN: ["The movie"]}),
        pip_requirements=pip_requirements(),
    )
