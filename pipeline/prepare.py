"""DVC stage 'prepare': see sentipipe.stages.prepare."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("prepare"))
