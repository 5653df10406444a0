"""DVC stage 'lm_train': see sentipipe.stages.lm_train."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("lm_train"))
