"""What every pipeline/ script runs: load the params, call the stage, turn a user error into one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from sentipipe.errors import SentipipeError

P = TypeVar("P")
PARAMS_FILE = "params.yaml"


def stage_label(stage: Callable) -> str:
    """`generator train` for sentipipe.tasks.generator.train, `ingest` for sentipipe.data.ingest."""
    parts = stage.__module__.split(".")
    return " ".join(parts[2:4]) if parts[1] == "tasks" else parts[-1]


def run(
    stage: Callable[[P], object], load: Callable[[str], P], params_file: str = PARAMS_FILE, label: str | None = None
) -> int:
    """Entry point of pipeline/<stage>.py: exit 0, or a user error as one line on stderr (naming `label`, or the
    stage's module) and exit 1."""
    try:
        stage(load(params_file))
    except SentipipeError as exc:
        print(f"sentipipe {label or stage_label(stage)}: error: {exc}", file=sys.stderr)
        return 1
    return 0
