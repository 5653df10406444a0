"""Resumable checkpoints: written atomically every epoch, resumed only when params, data and code match."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

from sentipipe.io import write_bytes

# What a stage with nothing to resume leaves (a disabled teacher): written and recognised without torch
FINISHED = b"sentipipe checkpoint: finished, nothing to resume\n"

PACKAGE = Path(__file__).resolve().parents[1]  # src/sentipipe


def code_digest(package: Path = PACKAGE, script: str | None = None) -> str:
    """md5 over the package's Python sources and the running stage script.

    A run killed, its code edited, then `dvc repro` again: DVC reruns the stage, and without this
    the stage would resume weights trained by the old code and finish them with the new.
    Every file of the package counts, not only the ones this stage imports: an edit elsewhere
    costs a fresh start after a kill, never a wrong model.
    """
    if script is None:
        script = getattr(sys.modules.get("__main__"), "__file__", None)
    files = sorted(package.rglob("*.py"))
    if script and Path(script).is_file():
        files.append(Path(script).resolve())
    digest = hashlib.md5()
    for path in files:
        digest.update(str(path.relative_to(package) if path.is_relative_to(package) else path.name).encode())
        digest.update(hashlib.md5(path.read_bytes()).digest())
    return digest.hexdigest()


def fingerprint(section: dict, data_tags: dict[str, str], code: str | None = None) -> str:
    """What a checkpoint must match to be resumed: the train params, the data and the code."""
    blob = json.dumps({"train": section, "data": data_tags, "code": code or code_digest()}, sort_keys=True)
    return hashlib.md5(blob.encode()).hexdigest()


def load(path: Path, expected: str, fresh: bool) -> dict | None:
    """The checkpoint to resume from, or None: asked to start afresh, none there, other params or data, finished."""
    if fresh or not path.is_file():
        return None
    with open(path, "rb") as f:
        if f.read(len(FINISHED)) == FINISHED:
            return None
    import torch  # noqa: PLC0415 - a disabled teacher's stage reads and writes checkpoints without torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != expected or state.get("complete"):
        return None
    return state


def save(path: Path, state: dict) -> None:
    import torch  # noqa: PLC0415 - see load

    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())


def write_finished(path: Path) -> None:
    """A checkpoint that `load` never resumes, written without torch."""
    write_bytes(path, FINISHED)
