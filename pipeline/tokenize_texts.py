"""DVC stage 'tokenize': see sentipipe.stages.tokenize."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("tokenize"))
