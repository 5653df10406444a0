"""DVC stage 'evaluate' of the classifier: see sentipipe.tasks.classifier.evaluate.

The TF-IDF reference is fitted first, in a process of its own, while this one holds
only its params; torch, mlflow and the network's code are imported after it is done
(sentipipe.tasks.classifier.reference).
"""

import sys

from sentipipe.runner import run
from sentipipe.tasks.classifier import reference
from sentipipe.tasks.classifier.params import load

if __name__ == "__main__":
    if code := run(reference.prefit, load):
        sys.exit(code)
    from sentipipe.tasks.classifier.evaluate import evaluate  # noqa: E402 - after the reference, on purpose

    sys.exit(run(evaluate, load))
