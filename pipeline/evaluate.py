"""DVC stage 'evaluate': see sentipipe.stages.evaluate."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("evaluate"))
