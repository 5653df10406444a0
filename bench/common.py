"""What the bench scripts share: params with `--set` overrides."""

from __future__ import annotations

from pathlib import Path

import yaml

from sentipipe.config import Params, parse_params


def parse_override(raw: dict, item: str) -> None:
    """Apply one `section.key=value` (any depth, e.g. generator.train.epochs=3); the value is YAML."""
    key, sep, value = item.partition("=")
    if not sep or "." not in key:
        raise SystemExit(f"--set {item!r}: expected section.key=value")
    *path, name = key.split(".")
    node = raw
    for part in path:
        node = node.setdefault(part, {})
    node[name] = yaml.safe_load(value)


def load(params_path: str, overrides: list[str]) -> Params:
    raw = yaml.safe_load(Path(params_path).read_text()) or {}
    for item in overrides:
        parse_override(raw, item)
    return parse_params(raw, params_path)
