"""sentipipe: a reproducible DVC + MLflow pipeline for recurrent text classifiers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sentipipe")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
