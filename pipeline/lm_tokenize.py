"""DVC stage 'lm_tokenize': see sentipipe.stages.lm_tokenize."""

import sys

from sentipipe.stages import main

if __name__ == "__main__":
    sys.exit(main("lm_tokenize"))
