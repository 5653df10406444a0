"""DVC stage 'train' of the generator: see sentipipe.tasks.generator.train."""

import sys

from sentipipe.runner import run
from sentipipe.tasks.generator.params import load
from sentipipe.tasks.generator.train import train

if __name__ == "__main__":
    sys.exit(run(train, load))
