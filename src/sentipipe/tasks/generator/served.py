"""The generator as served: prompts in; prompt, generated text and the prompt's unknown units out.

Free of MLflow, so the command line can load a cached model without MLflow's
start-up; the MLflow pyfunc (pyfunc.py) is this class with MLflow's predict().
"""

from __future__ import annotations

from sentipipe.errors import SentipipeError
from sentipipe.tasks.generator.mixture import MixedGenerator
from sentipipe.tasks.generator.params import LIMITS, SampleParams

PROMPT_COLUMN = "prompt"


def generation_options(params: dict | None, defaults: dict) -> dict:
    """Per-request options over the logged defaults, each checked (a bad one is a client error)."""
    options = dict(defaults)
    for key, value in (params or {}).items():
        if key not in options:
            raise SentipipeError(f"unknown parameter {key!r}; one of {sorted(options)}")
        options[key] = value
    for key, value in options.items():  # a number, and a whole one where a count is meant, before any comparison
        whole = key != "temperature"
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and value != int(value)):
            kind = "a whole number" if whole else "a number"
            raise SentipipeError(f"{key} must be {kind}, got {value!r}")
    for key, (low, high) in LIMITS.items():
        if not low <= options[key] <= high:
            raise SentipipeError(f"{key} must be between {low} and {high}, got {options[key]!r}")
    return {
        "max_length": int(options["max_length"]),
        "temperature": float(options["temperature"]),
        "top_k": int(options["top_k"]),
        "seed": int(options["seed"]),
    }


class ServedGenerator:
    column = PROMPT_COLUMN

    def load_context(self, context) -> None:
        self.generator = MixedGenerator.load(context.artifacts["generator"], device="cpu")
        logged = (context.model_config or {}).get("generation")
        self.defaults = dict(logged) if logged else SampleParams().model_dump()

    def predict_rows(self, prompts: list[str], params: dict) -> list[dict]:
        return self.generator.generate_rows(prompts, **generation_options(params, self.defaults))
