"""DVC stage 'prepare' (task-free): see sentipipe.data.prepare."""

import sys

from sentipipe.config import load_data
from sentipipe.data.prepare import prepare
from sentipipe.runner import run

if __name__ == "__main__":
    sys.exit(run(prepare, load_data))
