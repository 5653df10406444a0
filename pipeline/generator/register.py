"""DVC stage 'register' of the generator: see sentipipe.tasks.generator.register."""

import sys

from sentipipe.runner import run
from sentipipe.tasks.generator.params import load
from sentipipe.tasks.generator.register import register

if __name__ == "__main__":
    sys.exit(run(register, load))
