"""DVC stage 'embed' of the classifier: see sentipipe.tasks.classifier.embed."""

import sys

from sentipipe.runner import run
from sentipipe.tasks.classifier.embed import embed
from sentipipe.tasks.classifier.params import load

if __name__ == "__main__":
    sys.exit(run(embed, load))
