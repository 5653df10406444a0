"""Models-from-code entry point: MLflow executes this file to build the served model."""

from mlflow.models import set_model

from sentipipe.serving import SentimentModel

set_model(SentimentModel())
