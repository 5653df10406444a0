"""DVC stage 'register' of the classifier: see sentipipe.tasks.classifier.register."""

import sys

from sentipipe.runner import run
from sentipipe.tasks.classifier.params import load
from sentipipe.tasks.classifier.register import register

if __name__ == "__main__":
    sys.exit(run(register, load))
