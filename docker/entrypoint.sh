#!/bin/sh
# `train` runs the pipeline, `serve` serves the champion, anything else runs as given.
set -e
case "${1:-serve}" in
  train) shift; exec dvc repro "$@" ;;
  serve) shift; exec sentipipe serve --host 0.0.0.0 --port "${PORT:-5001}" "$@" ;;
  *) exec "$@" ;;
esac
