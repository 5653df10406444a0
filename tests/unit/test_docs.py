"""The user's docs say only what exists: README.md stays a short guide, and every command it and the
site show is a real make target or `sentipipe` command with real options. The site's strict build
(links, anchors, offline assets) runs in .ci/run as `make docs`, not here."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from sentipipe.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")


def code_of(path: Path) -> list[str]:
    """The lines of a page's fenced blocks and its inline code spans: where commands are shown."""
    text = path.read_text(encoding="utf-8")
    lines = [line for block in FENCE.findall(text) for line in block.splitlines()]
    return lines + INLINE.findall(FENCE.sub("", text))


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):(?!=)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE))


def subcommands() -> dict[str, set[str]]:
    """Each `sentipipe` subcommand and the options it takes (its own and the global ones)."""
    parser = build_parser()
    global_options = set(parser._option_string_actions)
    (sub,) = (a for a in parser._actions if a.dest == "command")
    return {name: global_options | set(p._option_string_actions) for name, p in sub.choices.items()}


def load_reference():
    spec = importlib.util.spec_from_file_location("params_reference", ROOT / "docs/hooks/params_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_a_short_guide():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/ (at most 250)"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_make_target_shown_exists(page):
    targets = make_targets()
    shown = {m for line in code_of(page) for m in re.findall(r"\bmake\s+(?:-\S+\s+)*([a-z][\w-]*)", line)}
    assert shown <= targets, f"{page.name} shows make targets the Makefile lacks: {sorted(shown - targets)}"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_sentipipe_command_and_option_shown_exists(page):
    commands, wrong = subcommands(), []
    for line in code_of(page):
        for match in re.finditer(r"(?<![\w/-])sentipipe\s+([a-z][\w-]*)([^#`;|]*)", line):
            name, rest = match.groups()
            if name not in commands:
                wrong.append(f"sentipipe {name}")
                continue
            try:
                words = shlex.split(rest)
            except ValueError:  # an unclosed quote in an excerpt: take the words as they are
                words = rest.split()
            options = {w.split("=")[0] for w in words if w.startswith("--")}
            wrong += [f"sentipipe {name} {o}" for o in sorted(options - commands[name])]
    assert not wrong, f"{page.name} shows what `sentipipe` does not have: {wrong}"


def test_the_readme_links_only_pages_that_exist():
    linked = set(re.findall(r"\]\((docs/[^)#\s]+)", README.read_text(encoding="utf-8")))
    missing = sorted(p for p in linked if not (ROOT / p).is_file())
    assert not missing, f"README.md links pages that do not exist: {missing}"


def test_the_params_reference_has_exactly_the_keys_of_params_yaml_each_described():
    reference = load_reference()
    rows = reference.rows(ROOT / "params.yaml")
    in_reference = {r.key for r in rows}
    in_file = set(reference.params_yaml_keys(ROOT / "params.yaml"))
    assert in_reference - in_file == set(), "keys of the params models missing from params.yaml"
    assert in_file - in_reference == set(), "params.yaml keys the models do not know"
    assert [r.key for r in rows if not r.description] == [], "keys with no description (give the Field one)"
    assert reference.MARKER in (ROOT / "docs" / reference.PAGE).read_text(encoding="utf-8")


def test_the_documented_distillation_set_is_the_makefiles():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    block = re.search(r"^DISTILL := (.*?)(?<!\\)\n", makefile, re.MULTILINE | re.DOTALL).group(1)
    flags = set(re.findall(r"-S (\S+)", block.replace("\\\n", " ")))
    page = (ROOT / "docs" / "distillation.md").read_text(encoding="utf-8")
    documented = set()
    for row in re.findall(r"^\| (`classifier\.[^|]*) \|", page, re.MULTILINE):
        spans = INLINE.findall(row)
        section = spans[0].split("=")[0].rsplit(".", 1)[0]
        for span in spans:  # `a.b.c=1`, then `d=2` in the same section
            documented.add(span if span.startswith("classifier.") else f"{section}.{span}")
    assert documented == flags, f"docs/distillation.md differs from the Makefile's DISTILL: {documented ^ flags}"
