"""DVC stage 'tokenize' of the generator: see sentipipe.tasks.generator.tokenize."""

# Not tokenize.py: a script of that name would shadow the standard library's tokenize module.
import sys

from sentipipe.runner import run
from sentipipe.tasks.generator.params import load
from sentipipe.tasks.generator.tokenize import tokenize

if __name__ == "__main__":
    sys.exit(run(tokenize, load))
