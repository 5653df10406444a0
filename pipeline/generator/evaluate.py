"""DVC stage 'evaluate' of the generator: see sentipipe.tasks.generator.evaluate."""

import sys

from sentipipe.runner import run
from sentipipe.tasks.generator.evaluate import evaluate
from sentipipe.tasks.generator.params import load

if __name__ == "__main__":
    sys.exit(run(evaluate, load))
