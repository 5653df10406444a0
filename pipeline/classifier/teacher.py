"""DVC stage 'teacher' of the classifier: see sentipipe.tasks.classifier.teacher.

Disabled (the default), the stage writes its empty outputs without importing torch, transformers or
mlflow (sentipipe.tasks.classifier.teacher_off).
"""

import sys

from sentipipe.runner import run
from sentipipe.tasks.classifier.params import ClassifierConfig, load
from sentipipe.tasks.classifier.teacher_off import teacher_off


def stage(params: ClassifierConfig) -> dict:
    if not params.classifier.distill.enabled:
        return teacher_off(params)
    from sentipipe.tasks.classifier.teacher import teacher  # noqa: PLC0415 - torch and transformers only when on

    return teacher(params)


if __name__ == "__main__":
    sys.exit(run(stage, load, label="classifier teacher"))
