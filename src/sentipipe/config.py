"""Typed, validated params: the sections both tasks share, and how a params file is read.

Every knob a user may turn lives in params.yaml; this module is where a wrong
value is caught, at load, with the key, the value and what is allowed, so that
nothing fails deep inside a stage. Each task reads the file through its own
root model (`tasks/<task>/params.py`), which validates the shared sections and
its own, and passes over the other task's: a stage's code, and so its DVC
deps, stay within its task.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentipipe.errors import ConfigError

VADER_CORPORA = ("movie", "amazon", "nyt", "tweets")
TRAIN_EXTRA_FOLDER = "data/feedback"  # data.train_extra's files: a dependency of the prepare stage
# The top-level sections of params.yaml; each task's root validates its own and the shared ones.
SECTIONS = ("data", "tracking", "monitoring", "compute", "classifier", "generator")
# Keys that moved: a file that still uses the old place fails with the new one named.
MOVED = {
    "tokenize": "classifier.tokenize",
    "embed": "classifier.embed",
    "train": "classifier.train",
    "evaluate": "classifier.evaluate",
    "register": "classifier.register",
    "tracking.experiment": "classifier.experiment (and generator.experiment)",
    "generator.evaluate.ngram_max_order": "generator.evaluate.ngram_order_limit (orders are now searched)",
    "classifier.train.epochs": "classifier.train.max_epochs (passes over the training data, capped by max_steps)",
    "generator.train.epochs": "generator.train.max_epochs (passes over the training stream, capped by max_steps)",
}

# `register` is a section name users see in params.yaml; pydantic warns that it
# shadows ABC.register, which nothing here calls on a params instance.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _on_off_words(cls, values: Any) -> Any:
        """YAML reads a bare `on` or `off` as true or false: a key whose values are words (`quantize: off`,
        `blend: off`) takes the word back instead of refusing the boolean."""
        if not isinstance(values, dict):
            return values
        out = dict(values)
        for name, field in cls.model_fields.items():
            value = out.get(name)
            if isinstance(value, bool) and get_origin(field.annotation) is Literal:
                word = "on" if value else "off"
                if word in get_args(field.annotation):
                    out[name] = word
        return out


class DataParams(Section):
    """The labelled corpus: where it comes from and how it is split (stages ingest and prepare)."""

    source: Literal["vader", "file"] = "vader"
    corpora: list[Literal["movie", "amazon", "nyt", "tweets"]] = Field(default_factory=lambda: ["movie"], min_length=1)
    threshold: float = Field(0.0, ge=0.0, description="ratings: positive above +threshold, negative below -threshold")
    # source: file
    path: str | list[str] | None = Field(
        None, description="a CSV, TSV, JSONL or Parquet file, or a list of them (each file's name is its rows' group)"
    )
    text_column: str = "text"
    label_column: str | None = "label"
    rating_column: str | None = Field(None, description="a numeric column turned into labels by `threshold`")
    group_column: str | None = Field(None, description="kept as the `source` of each row (per-group metrics)")
    label_map: dict[str, str] = Field(default_factory=dict, description="raw label -> class; empty: inferred")
    clean_html: bool = Field(False, description="strip HTML tags and unescape entities")
    unescape: bool = Field(False, description="literal \\uXXXX escapes in the texts (e.g. \\u002c) as characters")
    unicode_form: Literal["NFC", "NFKC", "none"] = "NFKC"
    max_undecodable: float = Field(0.01, ge=0.0, le=1.0, description="share of undecodable rows tolerated")
    max_rows: int | None = Field(None, gt=0)
    test_groups: list[str] = Field(
        default_factory=list,
        description="sources/groups held out as the whole test split (out-of-domain test); empty: random split",
    )
    val_groups: list[str] = Field(
        default_factory=list,
        description="sources/groups held out as the whole validation split (e.g. a benchmark's dev set); "
        "empty: random split",
    )
    val_size: float = Field(0.1, gt=0.0, lt=0.5)
    test_size: float = Field(0.1, gt=0.0, lt=0.5)
    seed: int = 13
    train_extra: list[str] = Field(
        default_factory=list,
        description="files of text,label rows added to the training split only (e.g. `sentipipe export-feedback`); "
        f"under {TRAIN_EXTRA_FOLDER}/, which the prepare stage watches",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DataParams:
        check_split_sizes(self, "data")
        if self.source == "file" and bool(self.label_column) == bool(self.rating_column):
            raise ValueError("set exactly one of data.label_column and data.rating_column")
        if both := sorted(set(self.val_groups) & set(self.test_groups)):
            raise ValueError(f"data.val_groups and data.test_groups share {both}; a group is held out once")
        if isinstance(self.path, list) and not self.path:
            raise ValueError("data.path: an empty list; name at least one file")
        outside = [p for p in self.train_extra if Path(p).parts[:2] != tuple(TRAIN_EXTRA_FOLDER.split("/"))]
        if outside:
            raise ValueError(
                f"data.train_extra: {outside} must lie under {TRAIN_EXTRA_FOLDER}/ (the folder the prepare stage "
                "watches, so that DVC reruns it when they change); move them there"
            )
        return self

    @property
    def paths(self) -> list[str]:
        """The corpus files, in order (a single path as a list of one)."""
        return [self.path] if isinstance(self.path, str) else list(self.path or [])


class LoopParams(Section):
    """What the training loop reads, whatever the task: the step budget, optimiser, schedule, device."""

    max_epochs: float | None = Field(
        None, gt=0, description="passes over the training data at most; the budget is this or max_steps, fewer"
    )
    max_steps: int = Field(3000, ge=1, description="the budget of optimizer steps (a cap when max_epochs is set)")
    eval_every: int = Field(200, ge=1, description="steps between evaluations on validation data (one epoch at most)")
    evals_per_pass: int | None = Field(
        None,
        ge=1,
        description="evaluations per pass at most: on a large corpus eval_every grows to a pass over this, so "
        "patience counts a like share of the data whatever its size; null: eval_every alone",
    )
    patience: int = Field(5, ge=0, description="evaluations without improvement before stopping; 0: never")
    max_minutes: float = Field(120.0, gt=0, description="a safety net on wall time, recorded when it fires")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    clip_norm: float = Field(1.0, gt=0.0)
    schedule: Literal["cosine", "plateau", "constant"] = "cosine"
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="share of the step budget warming up (cosine)")
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    ema_decay: float = Field(
        0.0, ge=0.0, lt=1.0, description="evaluate and keep a moving average of the weights (e.g. 0.999); 0: off"
    )
    amp: bool = Field(True, description="mixed precision on CUDA (bf16 where cuDNN runs RNNs in it); not on CPU")
    deterministic: bool = Field(False, description="deterministic kernels on CUDA (reproducible, slower)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 13
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 leaves torch's default")


class RegisterParams(Section):
    """The promotion policy (registry.decide); each task sets its own model name and metric."""

    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][\w.\-]*$")
    metric: str = Field(pattern=r"^(val|test)_[a-z0-9_]+$", description="<split>_<name> of the task's metrics")
    direction: Literal["maximize", "minimize"] = "maximize"
    min_improvement: float = Field(0.0, ge=0.0)
    floor: float | None = Field(None, description="the metric must reach this (at least, or at most when minimizing)")
    require_gpu: bool = Field(False, description="only CUDA-trained models may become champion")
    beat_baseline: bool = Field(True, description="a champion's metric must beat the task's reference baseline")


class TrackingParams(Section):
    uri: str | None = Field(
        None, description="tracking URI; MLFLOW_TRACKING_URI wins; default: SQLite at the repo root"
    )


class MonitoringParams(Section):
    """The served model's prediction log, drift and live figures (`sentipipe serve|predict|monitor|feedback`).

    No stage reads this section, so changing it reruns nothing (like `tracking`).
    """

    enabled: bool = Field(False, description="serve and predict --input append every scored row to the log")
    log: str = Field("logs/predictions", min_length=1, description="the log's folder: a path or an fsspec URI")
    text: Literal["full", "hash"] = Field(
        "full", description="full: the text is logged; hash: its SHA-256 only (the log cannot be exported)"
    )
    flush_rows: int = Field(1000, ge=1, description="rows per log file at most: a file is written when reached")
    flush_seconds: float = Field(10.0, gt=0, description="a file is written at least this often while rows wait")
    max_pending_rows: int = Field(
        100_000, ge=1, description="rows waiting for the writer at most; past it rows are dropped and counted"
    )
    window: int = Field(500, ge=20, description="rows per monitored window (the newest full windows are tested)")
    windows: int = Field(5, ge=1, description="how many of the newest windows `sentipipe monitor` tests")
    alpha: float = Field(0.01, gt=0, lt=0.5, description="false-alarm rate a window, split over its tests (Bonferroni)")
    reference_rows: int = Field(5000, ge=100, description="validation rows scored as the reference at most")
    max_accuracy_drop: float = Field(
        0.05, ge=0, le=1, description="live accuracy this far below validation accuracy is an alarm"
    )
    min_labelled: int = Field(100, ge=1, description="labelled rows a window needs before its live accuracy counts")
    experiment: str = Field("sentipipe-monitoring", min_length=1, description="the MLflow experiment of monitor runs")


class ComputeParams(Section):
    """Where data-parallel work runs (tokenize, teacher labelling, batch prediction): here, or on a Ray cluster.

    No stage lists this section, so switching engines reruns nothing (like `tracking`): either engine writes the
    same bytes. The cluster's address is Ray's own RAY_ADDRESS (unset: Ray starts a local instance).
    """

    engine: Literal["local", "ray"] = Field(
        "local", description="local: this process | ray: a Ray cluster at RAY_ADDRESS (pip install 'sentipipe[ray]')"
    )
    chunk_rows: int = Field(
        10_000, ge=1, description="rows read, sent to a worker and written at a time (tokenize, teacher, predict)"
    )


def check_split_sizes(data: Any, key: str) -> None:
    """What every data section must satisfy: training data remains, a file source names its file."""
    if data.val_size + data.test_size >= 0.9:
        raise ValueError(f"{key}.val_size + {key}.test_size must stay below 0.9 so that training data remains")
    if data.source == "file" and not data.path:
        raise ValueError(f"{key}.path is required when {key}.source is 'file'")


class Root(Section):
    """A whole params file as one reader sees it: its sections validated, other known sections passed over."""

    @model_validator(mode="before")
    @classmethod
    def _drop_foreign_sections(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        return {k: v for k, v in raw.items() if k in cls.model_fields or k not in SECTIONS}


class DataConfig(Root):
    """What the task-free data stages (ingest, prepare) read."""

    data: DataParams = Field(default_factory=DataParams)


class MonitoringConfig(Root):
    """What the serving and monitoring commands read."""

    tracking: TrackingParams = Field(default_factory=TrackingParams)
    monitoring: MonitoringParams = Field(default_factory=MonitoringParams)


class ComputeConfig(Root):
    """What a command that runs data-parallel work reads (`sentipipe predict --input`)."""

    compute: ComputeParams = Field(default_factory=ComputeParams)


class TrackingConfig(Root):
    """What a command that only talks to the store reads."""

    tracking: TrackingParams = Field(default_factory=TrackingParams)


def _format_error(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key (value {err['input']!r}); check its spelling"
    if err["type"] == "literal_error":
        return f"{key}: {err['input']!r} is not allowed; {msg.lower()}"
    if "input" in err and err["type"] != "value_error":
        return f"{key}: {err['input']!r} is not allowed: {msg.lower()}"
    return f"{key}: {msg.removeprefix('Value error, ')}"


def _moved_keys(raw: dict[str, Any]) -> list[str]:
    found = []
    for old, new in MOVED.items():
        *path, key = old.split(".")
        node: Any = raw
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and key in node:
            found.append(f"{old}: moved to {new}; move it there")
    return found


R = TypeVar("R", bound=Root)


def parse(raw: dict[str, Any] | None, model: type[R], source: str = "params") -> R:
    """Validate a params mapping with a root model; raise ConfigError naming every bad key."""
    raw = raw or {}
    lines = _moved_keys(raw)
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if not any(key == old or key.startswith(old + ".") for old in MOVED):  # already said above
                lines.append(_format_error(err))
    else:
        if not lines:
            return parsed
    raise ConfigError(f"{source}: invalid params:\n  " + "\n  ".join(lines))


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key written twice in one mapping (plain YAML keeps the last, silently)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is written twice in one section", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read(path: str | Path) -> dict[str, Any]:
    """The params file as a mapping; a missing or malformed file is a user error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found (run from the repository root)")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return raw or {}


def load(path: str | Path, model: type[R]) -> R:
    return parse(read(path), model, str(path))


def load_data(path: str | Path = "params.yaml") -> DataConfig:
    return load(path, DataConfig)
