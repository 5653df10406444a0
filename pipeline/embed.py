"""DVC stage 'embed': see sentipipe.stages.embed."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("embed"))
