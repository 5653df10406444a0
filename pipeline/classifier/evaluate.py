"""DVC stage 'evaluate' of the classifier: see sentipipe.tasks.classifier.evaluate."""

import sys

from sentipipe.runner import run
from sentipipe.tasks.classifier.evaluate import evaluate
from sentipipe.tasks.classifier.params import load

if __name__ == "__main__":
    sys.exit(run(evaluate, load))
