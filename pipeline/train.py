"""DVC stage 'train': see sentipipe.stages.train."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("train"))
