"""What the bench scripts share: params with `--set` overrides."""

from __future__ import annotations

from pathlib import Path

import yaml

from sentipipe.config import R, parse


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


def load_raw(params_path: str, overrides: list[str]) -> dict:
    raw = yaml.safe_load(Path(params_path).read_text()) or {}
    for item in overrides:
        parse_override(raw, item)
    return raw


def load(params_path: str, overrides: list[str], model: type[R]) -> R:
    """The params file with `--set` overrides, as one reader (a task's root model) sees it."""
    return parse(load_raw(params_path, overrides), model, params_path)


def run_stages(params_path: str, overrides: list[str], task: str, names: tuple[str, ...]) -> None:
    """Run stages in the current directory: ingest and prepare read the data section, the rest the task's."""
    import importlib

    from sentipipe.config import DataConfig

    root = importlib.import_module(f"sentipipe.tasks.{task}.params")
    config = {"classifier": "ClassifierConfig", "generator": "GeneratorConfig"}[task]
    for name in names:
        if name in ("ingest", "prepare"):
            fn = getattr(importlib.import_module(f"sentipipe.data.{name}"), name)
            fn(load(params_path, overrides, DataConfig))
        else:
            fn = getattr(importlib.import_module(f"sentipipe.tasks.{task}.{name}"), name)
            fn(load(params_path, overrides, getattr(root, config)))
