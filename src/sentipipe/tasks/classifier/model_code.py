"""Models-from-code entry point: MLflow executes this file to build the served classifier."""

from mlflow.models import set_model

from sentipipe.tasks.classifier.pyfunc import ClassifierModel

set_model(ClassifierModel())
