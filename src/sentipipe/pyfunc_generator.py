"""Models-from-code entry point of the generator: MLflow executes this file to build the served model."""

from mlflow.models import set_model

from sentipipe.serving import GeneratorModel

set_model(GeneratorModel())
