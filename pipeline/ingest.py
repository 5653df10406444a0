"""DVC stage 'ingest': see sentipipe.stages.ingest."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("ingest"))
