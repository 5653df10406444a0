"""DVC stage 'register': see sentipipe.stages.register."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("register"))
