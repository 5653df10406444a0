"""Resumable checkpoints: written atomically every epoch, resumed only when params and data match."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch

from sentipipe.io import write_bytes


def fingerprint(section: dict, data_tags: dict[str, str]) -> str:
    """What a checkpoint must match to be resumed: the train params and the data."""
    blob = json.dumps({"train": section, "data": data_tags}, sort_keys=True)
    return hashlib.md5(blob.encode()).hexdigest()


def load(path: Path, expected: str, fresh: bool) -> dict | None:
    """The checkpoint to resume from, or None: asked to start afresh, none there, other params or data, finished."""
    if fresh or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != expected or state.get("complete"):
        return None
    return state


def save(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())
