"""DVC stage 'lm_evaluate': see sentipipe.stages.lm_evaluate."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("lm_evaluate"))
