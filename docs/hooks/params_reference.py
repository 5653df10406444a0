"""The params reference page, written at build time from the typed params and params.yaml.

docs/params.md holds a marker; this MkDocs hook replaces it with one table per
params section: every key, its value in params.yaml, the value when the key is
left out, what the model allows (from the pydantic annotations and
constraints), and what it does (the Field description, else the key's comment
in params.yaml). Nothing is copied by hand, so the page cannot drift from the
code; tests/unit/test_docs.py checks that its keys are exactly params.yaml's.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from sentipipe.config import ComputeConfig, MonitoringConfig
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.generator.params import GeneratorConfig

MARKER = "<!-- params-reference -->"
PAGE = "params.md"
# Keys whose meaning neither the model nor params.yaml spells out: the same word means the same
# thing in every section. Used only when both are silent.
GENERIC = {
    "seed": "random seed of this step",
    "val_size": "share of the rows held out as validation data",
    "test_size": "share of the rows held out as test data",
    "text_column": "the column that holds the text",
    "lowercase": "lowercase the text before building the vocabulary",
    "min_freq": "a unit seen fewer times in training data becomes `<unk>`",
    "max_size": "the vocabulary's size at most (the most frequent units are kept)",
    "batch_size": "items per batch",
    "lr": "AdamW's learning rate (the peak of the schedule)",
    "weight_decay": "AdamW's weight decay",
    "clip_norm": "gradients are clipped to this global norm",
    "num_layers": "stacked recurrent layers",
    "hidden_size": "recurrent units (a direction)",
    "embed_dim": "size of the unit embeddings",
    "cell": "the recurrent cell",
    "bidirectional": "read the text in both directions",
    "dim": "size of the word vectors",
    "format": "the vectors file's format",
    "direction": "whether a higher or a lower metric is better",
    "min_improvement": "the champion moves only when beaten by more than this",
    "teacher_epochs": "the teacher's passes over the training split",
    "teacher_lr": "the teacher's learning rate",
    "teacher_batch_size": "texts per teacher batch",
    "unicode_form": "Unicode normalisation of the text",
    "source": "where the data comes from",
    "corpora": "which human-rated corpora of vaderSentiment's source distribution",
    "label_column": "the column that holds the labels",
    "temperatures": "sampling temperatures of the samples logged at evaluation",
    "prompts": "prompts of the samples logged at evaluation",
    "patience": "evaluations without improvement before stopping (0: spend the whole budget)",
    "eval_every": "steps between evaluations on validation data",
    "max_rows": "a stratified sample of this many rows; null keeps all",
    "model_name": "the registered model's name in the MLflow registry",
    "device": "where training runs: auto takes CUDA when present (recorded on the run)",
    "embed_dropout": "dropout on the embedded units",
    "schedule": "the learning rate over the step budget",
    "class_weights": "balanced: weight each class's loss by its inverse frequency",
    "pooling": "how the recurrent outputs over a text become one vector",
}


class Row(typing.NamedTuple):
    key: str
    value: Any  # in params.yaml
    default: Any  # when the key is left out
    allowed: str
    description: str


def _leaves(node: Any, leaf_keys: set[str], prefix: str = "") -> dict[str, Any]:
    """Every leaf key of a params mapping, dotted; a mapping the models take as one value is a leaf."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and path not in leaf_keys:
            out.update(_leaves(value, leaf_keys, path))
        else:
            out[path] = value
    return out


def params_yaml_keys(path: Path) -> dict[str, Any]:
    """params.yaml's leaf keys and their values."""
    return _leaves(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, set(model_fields()))


def yaml_comments(path: Path) -> dict[str, str]:
    """Each key's trailing comment in params.yaml, with the comment lines that continue it below."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    last: tuple[str, int] | None = None  # the key whose comment may continue, and the column its comment starts
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped:
            last = None
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("#"):
            if last and indent >= last[1] > 0:
                comments[last[0]] += " " + stripped.lstrip("#").strip()
            else:
                last = None
            continue
        match = re.match(r"(\s*)([A-Za-z_][\w]*):(.*)$", line)
        if not match:
            last = None
            continue
        key, rest = match.group(2), match.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        path_key = ".".join(k for _, k in stack)
        hash_at = _comment_start(rest)
        if hash_at is None:
            last = None
            continue
        comments[path_key] = rest[hash_at + 1 :].strip()
        last = (path_key, len(line) - len(rest) + hash_at)
    return comments


def _comment_start(rest: str) -> int | None:
    """Where a trailing comment starts in a YAML value (a # outside quotes, after white space)."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1].isspace()):
            return i
    return None


def _bounds(metadata: list[Any]) -> list[str]:
    words = []
    for m in metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                words.append(f"{sign} {getattr(m, attr)}")
        if getattr(m, "min_length", None):
            words.append("not empty")
        if getattr(m, "pattern", None):
            words.append(f"matching `{m.pattern}`")  # a pipe inside a code span does not split a cell
    return words


def _type_words(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_words(a) for a in args if a is not type(None)]
        return " \\| ".join(parts) + (" \\| `null`" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_words(args[0])}"
    if origin is dict:
        return f"mapping of {_type_words(args[0])} to {_type_words(args[1])}"
    return {bool: "`true` \\| `false`", int: "integer", float: "number", str: "text"}.get(annotation, str(annotation))


def allowed(field: Any) -> str:
    words = _type_words(field.annotation)
    bounds = _bounds(field.metadata)
    return words + (", " + ", ".join(bounds) if bounds else "")


def _fields(model: type[BaseModel], prefix: str = "") -> dict[str, tuple[type[BaseModel], str, Any]]:
    """Every leaf field of a params model, dotted: (its section model, its name, its FieldInfo)."""
    out: dict[str, tuple[type[BaseModel], str, Any]] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.update(_fields(annotation, path))
        else:
            out[path] = (model, name, field)
    return out


def model_fields() -> dict[str, tuple[type[BaseModel], str, Any]]:
    """The leaf fields of both tasks' params and the serving side's (the shared sections once)."""
    models = (ClassifierConfig, GeneratorConfig, MonitoringConfig, ComputeConfig)
    return {key: value for model in models for key, value in _fields(model).items()}


def sections() -> dict[str, type[BaseModel]]:
    """Each params section (a dotted path to a model holding leaf keys) and its model."""
    found: dict[str, type[BaseModel]] = {}
    for key, (model, _, _) in model_fields().items():
        found.setdefault(key.rsplit(".", 1)[0], model)
    return found


def rows(params_path: Path) -> list[Row]:
    """One row per leaf key of the params models, in their order."""
    values = params_yaml_keys(params_path)
    comments = yaml_comments(params_path)
    out = []
    for key, (model, name, field) in model_fields().items():
        comment = comments.get(key, "")
        if _only_lists_choices(comment, field.annotation):
            comment = ""
        inherited = (c.model_fields[name].description for c in model.__mro__ if name in getattr(c, "model_fields", {}))
        description = field.description or comment or next(filter(None, inherited), GENERIC.get(name, ""))
        default = field.get_default(call_default_factory=True)
        out.append(Row(key, values.get(key, "(not in params.yaml)"), default, allowed(field), description))
    return out


def _only_lists_choices(comment: str, annotation: Any) -> bool:
    """A params.yaml comment such as `auto | cpu | cuda` says no more than the allowed column."""
    choices = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()
    return bool(choices) and comment.replace(" ", "") == "|".join(map(str, choices))


def _cell(text: str) -> str:
    """Text for a table cell: pipes escaped, and outside code spans `<` too (`<unk>` is not a tag)."""
    parts = text.split("`")
    parts[::2] = [p.replace("<", "&lt;").replace(">", "&gt;") for p in parts[::2]]
    return "`".join(parts).replace("|", "\\|")


def _show(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return f"`{text}`".replace("|", "\\|")


def reference_markdown(params_path: Path) -> str:
    comments = yaml_comments(params_path)
    models = sections()
    by_section: dict[str, list[Row]] = {}
    for row in rows(params_path):
        by_section.setdefault(row.key.rsplit(".", 1)[0], []).append(row)
    parts = []
    for section, section_rows in by_section.items():
        doc = (models[section].__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        if doc.startswith(("A whole params file", "params.yaml as")):
            doc = ""
        intro = comments.get(section) or doc
        anchor = section.replace(".", "-")
        parts += [f"## `{section}` {{#{anchor}}}", ""]
        if intro:
            parts += [_cell(intro), ""]
        parts += ["| key | params.yaml | if left out | allowed | what it does |", "|---|---|---|---|---|"]
        for r in section_rows:
            left_out = _show(r.default) if r.default != r.value else "same"
            name = r.key.rsplit(".", 1)[1]
            parts.append(f"| `{name}` | {_show(r.value)} | {left_out} | {r.allowed} | {_cell(r.description)} |")
        parts.append("")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs hook: fill the marker of the params page."""
    if page.file.src_uri != PAGE:
        return markdown
    params_path = Path(config["config_file_path"]).parent / "params.yaml"
    return markdown.replace(MARKER, reference_markdown(params_path))
