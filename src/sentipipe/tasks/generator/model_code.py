"""Models-from-code entry point: MLflow executes this file to build the served generator."""

from mlflow.models import set_model

from sentipipe.tasks.generator.pyfunc import GeneratorModel

set_model(GeneratorModel())
