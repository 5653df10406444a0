"""DVC stage 'teacher' of the classifier: see sentipipe.tasks.classifier.teacher."""

import sys

from sentipipe.runner import run
from sentipipe.tasks.classifier.params import load
from sentipipe.tasks.classifier.teacher import teacher

if __name__ == "__main__":
    sys.exit(run(teacher, load))
