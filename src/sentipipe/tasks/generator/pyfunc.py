"""The generator as an MLflow pyfunc: prompts in; prompt, generated text and unknown-unit count out.

Input: a `prompt` column, or a list of strings (see sentipipe.serving).
Params per request: max_length, temperature, top_k and seed, whose defaults are
`generator.sample` at registration and whose bounds are the params' own.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from sentipipe.errors import SentipipeError
from sentipipe.serving import client_error, log_pyfunc, text_schema, texts_from_input
from sentipipe.tasks.generator.params import SampleParams
from sentipipe.tasks.generator.served import PROMPT_COLUMN, ServedGenerator, generation_options

OPTION_TYPES = {"max_length": "long", "temperature": "double", "top_k": "long", "seed": "long"}


class GeneratorModel(ServedGenerator, mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        try:
            prompts = texts_from_input(model_input, PROMPT_COLUMN)
            options = generation_options(params, self.defaults)
        except SentipipeError as exc:
            raise client_error(exc) from None
        return self.generator.generate_frame(prompts, **options)


def log_model(generator_path: Path, sample: SampleParams, name: str = "model"):
    """Log the generator as a models-from-code pyfunc; `sample` gives the default options."""
    defaults = sample.model_dump()
    signature = ModelSignature(
        inputs=text_schema(PROMPT_COLUMN),
        outputs=Schema(
            [
                ColSpec("string", "prompt"),
                ColSpec("string", "generated"),
                ColSpec("string", "text"),
                ColSpec("long", "unknown_units"),
            ]
        ),
        params=ParamSchema([ParamSpec(k, OPTION_TYPES[k], v) for k, v in defaults.items()]),
    )
    return log_pyfunc(
        Path(__file__).with_name("model_code.py"),
        {"generator": str(generator_path)},
        name=name,
        model_config={"generation": defaults},
        signature=signature,
        input_example=pd.DataFrame({PROMPT_COLUMN: ["The movie"]}),
    )
