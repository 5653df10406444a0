"""DVC stage 'train' of the classifier: see sentipipe.tasks.classifier.train."""

import sys

from sentipipe.runner import run
from sentipipe.tasks.classifier.params import load
from sentipipe.tasks.classifier.train import train

if __name__ == "__main__":
    sys.exit(run(train, load))
