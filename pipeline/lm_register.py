"""DVC stage 'lm_register': see sentipipe.stages.lm_register."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("lm_register"))
