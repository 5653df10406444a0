"""DVC stage 'tokenize' of the classifier: see sentipipe.tasks.classifier.tokenize."""

# Not tokenize.py: a script of that name would shadow the standard library's tokenize module.
import sys

from sentipipe.runner import run
from sentipipe.tasks.classifier.params import load
from sentipipe.tasks.classifier.tokenize import tokenize

if __name__ == "__main__":
    sys.exit(run(tokenize, load))
