"""DVC stage 'ingest' (task-free): see sentipipe.data.ingest."""

import sys

from sentipipe.config import load_data
from sentipipe.data.ingest import ingest
from sentipipe.runner import run

if __name__ == "__main__":
    sys.exit(run(ingest, load_data))
