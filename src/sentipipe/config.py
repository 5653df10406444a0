"""Typed, validated params: one model per params.yaml section.

Every knob a user may turn lives in params.yaml; this module is where a wrong
value is caught, at load, with the key, the value and what is allowed, so that
nothing fails deep inside a stage.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentipipe.errors import ConfigError

VADER_CORPORA = ("movie", "amazon", "nyt", "tweets")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Section):
    source: Literal["vader", "file"] = "vader"
    corpora: list[Literal["movie", "amazon", "nyt", "tweets"]] = Field(default_factory=lambda: ["movie"], min_length=1)
    threshold: float = Field(0.0, ge=0.0, description="ratings: positive above +threshold, negative below -threshold")
    # source: file
    path: str | None = Field(None, description="a CSV, TSV, JSONL or Parquet file")
    text_column: str = "text"
    label_column: str | None = "label"
    rating_column: str | None = Field(None, description="a numeric column turned into labels by `threshold`")
    group_column: str | None = Field(None, description="kept as the `source` of each row (per-group metrics)")
    label_map: dict[str, str] = Field(default_factory=dict, description="raw label -> class; empty: inferred")
    clean_html: bool = Field(False, description="strip HTML tags and unescape entities")
    unicode_form: Literal["NFC", "NFKC", "none"] = "NFKC"
    max_undecodable: float = Field(0.01, ge=0.0, le=1.0, description="share of undecodable rows tolerated")
    max_rows: int | None = Field(None, gt=0)
    test_groups: list[str] = Field(
        default_factory=list,
        description="sources/groups held out as the whole test split (out-of-domain test); empty: random split",
    )
    val_size: float = Field(0.1, gt=0.0, lt=0.5)
    test_size: float = Field(0.1, gt=0.0, lt=0.5)
    seed: int = 13


class TokenizeParams(_Section):
    lowercase: bool = True
    min_freq: int = Field(1, ge=1)
    max_size: int = Field(50_000, ge=10)
    max_length: int = Field(256, ge=1)
    special_tokens: bool = Field(False, description="URLs, numbers, @mentions -> <url>, <num>, <user>")
    batch_size: int = Field(1000, ge=1)
    n_process: int = Field(1, ge=1, description="spaCy worker processes")


class EmbedParams(_Section):
    source: Literal["random", "minilm", "word2vec", "fasttext", "file"] = "random"
    mode: Literal["pieces", "encoder", "context"] = "encoder"
    dim: int = Field(128, ge=2)
    # word2vec / fasttext, trained with gensim on the training split
    window: int = Field(5, ge=1)
    epochs: int = Field(10, ge=1)
    min_count: int = Field(1, ge=1)
    # file: pretrained vectors
    path: str | None = Field(None, description="vectors file for source 'file'")
    format: Literal["word2vec_text", "word2vec_binary", "glove"] = "word2vec_text"
    scale: float = Field(0.1, gt=0.0)
    seed: int = 13


class LoopParams(_Section):
    """What the training loop reads, whatever the task: optimiser, schedule, stopping, device."""

    epochs: int = Field(6, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    clip_norm: float = Field(1.0, gt=0.0)
    schedule: Literal["cosine", "plateau", "constant"] = "cosine"
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="share of steps warming up (cosine)")
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    patience: int = Field(0, ge=0, description="epochs without improvement before stopping; 0: never")
    amp: bool = Field(True, description="mixed precision on CUDA (bf16 where supported); ignored on CPU")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 13
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 leaves torch's default")


class TrainParams(LoopParams):
    cell: Literal["rnn_tanh", "rnn_relu", "lstm", "gru"] = "lstm"
    bidirectional: bool = True
    hidden_size: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1)
    embed_dropout: float = Field(0.3, ge=0.0, lt=1.0, description="dropout on the embedded tokens")
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="between recurrent layers and before the output")
    pooling: Literal["last", "max", "mean", "attention"] = "max"
    freeze_embeddings: bool = False
    class_weights: Literal["none", "balanced"] = "none"


class EvaluateParams(_Section):
    batch_size: int = Field(256, ge=1)
    baseline: bool = Field(True, description="also score TF-IDF logistic regression on the same split")


class RegisterParams(_Section):
    model_name: str = Field("sentipipe-sentiment", min_length=1, pattern=r"^[A-Za-z0-9][\w.\-]*$")
    metric: str = Field(
        "val_accuracy",
        pattern=r"^(val|test)_[a-z0-9_]+$",
        description="a key of reports/metrics.json as <split>_<name>, e.g. val_accuracy, val_macro_f1, val_log_loss",
    )
    direction: Literal["maximize", "minimize"] = "maximize"
    min_improvement: float = Field(0.0, ge=0.0)
    floor: float | None = Field(None, description="the metric must reach this (at least, or at most when minimizing)")
    require_gpu: bool = Field(False, description="only CUDA-trained models may become champion")


class TrackingParams(_Section):
    experiment: str = Field("sentipipe", min_length=1)
    uri: str | None = Field(
        None, description="tracking URI; MLFLOW_TRACKING_URI wins; default: SQLite at the repo root"
    )


def _check_data(data: DataParams | GeneratorDataParams, key: str) -> None:
    """What both tasks' data sections must satisfy: training data remains, a file source names its file."""
    if data.val_size + data.test_size >= 0.9:
        raise ValueError(f"{key}.val_size + {key}.test_size must stay below 0.9 so that training data remains")
    if data.source == "file" and not data.path:
        raise ValueError(f"{key}.path is required when {key}.source is 'file'")


# ---------------------------------------------------------------- the generator task


# `register` is a section name users see in params.yaml; pydantic warns that it
# shadows ABC.register, which nothing here calls on a Params instance.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class GeneratorDataParams(_Section):
    source: Literal["prepared", "file"] = Field(
        "prepared", description="prepared: the texts of data/prepared (the classifier's splits); file: `path`"
    )
    path: str | None = Field(
        None, description="a .txt file (documents split at blank lines) or a CSV/TSV/JSONL/Parquet"
    )
    text_column: str = "text"
    val_size: float = Field(0.1, gt=0.0, lt=0.5)
    test_size: float = Field(0.1, gt=0.0, lt=0.5)
    seed: int = 13


class GeneratorTokenizeParams(_Section):
    unit: Literal["char", "token"] = Field("char", description="characters, or spaCy tokens")
    lowercase: bool = False
    min_freq: int = Field(1, ge=1, description="rarer units become <unk>")
    max_size: int = Field(20_000, ge=10)


class GeneratorTrainParams(LoopParams):
    """Defaults: the configuration measured to beat the n-gram on the default corpus (bench/generator.py)."""

    cell: Literal["rnn_tanh", "rnn_relu", "lstm", "gru"] = "lstm"
    embed_dim: int = Field(64, ge=2)
    hidden_size: int = Field(512, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between layers and before the decoder")
    embed_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    bptt: int = Field(64, ge=2, description="window length of truncated backpropagation through time")
    monitor: Literal["val_accuracy", "val_loss"] = "val_loss"
    epochs: int = Field(10, ge=1)
    lr: float = Field(3e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_ratio: float = Field(0.02, ge=0.0, lt=1.0)
    batch_size: int = Field(32, ge=1, description="lanes of the training stream")


class SampleParams(_Section):
    """Defaults of generation (the CLI and the served model take overrides)."""

    max_length: int = Field(200, ge=1, le=10_000, description="units generated after the prompt")
    temperature: float = Field(0.8, ge=0.0, description="0: greedy")
    top_k: int = Field(0, ge=0, description="sample among the k likeliest units; 0: all")
    seed: int = 13


class GeneratorEvaluateParams(_Section):
    baseline: bool = Field(True, description="also fit a Kneser-Ney n-gram on the same split, as a reference")
    ngram_max_order: int = Field(7, ge=1, le=12, description="orders 1..this are tried; the best on val is kept")
    temperatures: list[float] = Field(default_factory=lambda: [0.5, 1.0], min_length=1)
    prompts: list[str] = Field(default_factory=lambda: ["The movie", "This film is"], min_length=1)


class GeneratorRegisterParams(RegisterParams):
    model_name: str = Field("sentipipe-generator", min_length=1, pattern=r"^[A-Za-z0-9][\w.\-]*$")
    metric: str = Field("val_bpc", pattern=r"^(val|test)_[a-z0-9_]+$")
    direction: Literal["maximize", "minimize"] = "minimize"


class GeneratorParams(_Section):
    experiment: str = Field("sentipipe-generator", min_length=1, description="MLflow experiment (store: tracking)")
    data: GeneratorDataParams = Field(default_factory=GeneratorDataParams)
    tokenize: GeneratorTokenizeParams = Field(default_factory=GeneratorTokenizeParams)
    train: GeneratorTrainParams = Field(default_factory=GeneratorTrainParams)
    sample: SampleParams = Field(default_factory=SampleParams)
    evaluate: GeneratorEvaluateParams = Field(default_factory=GeneratorEvaluateParams)
    register: GeneratorRegisterParams = Field(default_factory=GeneratorRegisterParams)

    @model_validator(mode="after")
    def _consistent(self) -> GeneratorParams:
        _check_data(self.data, "generator.data")
        return self


class Params(_Section):
    data: DataParams = Field(default_factory=DataParams)
    tokenize: TokenizeParams = Field(default_factory=TokenizeParams)
    embed: EmbedParams = Field(default_factory=EmbedParams)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    register: RegisterParams = Field(default_factory=RegisterParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    generator: GeneratorParams = Field(default_factory=GeneratorParams)

    @model_validator(mode="after")
    def _splits_leave_training_data(self) -> Params:
        _check_data(self.data, "data")
        if self.data.source == "file":
            if bool(self.data.label_column) == bool(self.data.rating_column):
                raise ValueError("set exactly one of data.label_column and data.rating_column")
        if self.embed.source == "file" and not self.embed.path:
            raise ValueError("embed.path is required when embed.source is 'file'")
        if self.embed.source == "minilm" and self.embed.dim != 384:
            raise ValueError("embed.dim must be 384 when embed.source is 'minilm' (its vector size)")
        return self


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


def parse_params(raw: dict[str, Any] | None, source: str = "params") -> Params:
    """Validate a params mapping; raise ConfigError naming every bad key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as exc:
        lines = [_format_error(e) for e in exc.errors()]
        raise ConfigError(f"{source}: invalid params:\n  " + "\n  ".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found (run from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return parse_params(raw, str(path))
