"""The generator's params: the `generator:` section of params.yaml, and the file as its stages read it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from sentipipe import config
from sentipipe.config import LoopParams, RegisterParams, Root, Section, TrackingParams, check_split_sizes


class DataParams(Section):
    source: Literal["prepared", "file"] = Field(
        "prepared", description="prepared: the texts of data/prepared (the classifier's splits); file: `path`"
    )
    path: str | None = Field(
        None, description="a .txt file (documents split at blank lines) or a CSV/TSV/JSONL/Parquet"
    )
    text_column: str = "text"
    max_chars: int = Field(
        2_000_000,
        ge=1_000,
        description="characters of training text at most (val and test: an eighth of it each); the rest is left out",
    )
    val_size: float = Field(0.1, gt=0.0, lt=0.5)
    test_size: float = Field(0.1, gt=0.0, lt=0.5)
    seed: int = 13

    @model_validator(mode="after")
    def _consistent(self) -> DataParams:
        check_split_sizes(self, "generator.data")
        return self


class TokenizeParams(Section):
    unit: Literal["char", "token"] = Field("char", description="characters, or spaCy tokens")
    lowercase: bool = False
    min_freq: int = Field(1, ge=1, description="rarer units become <unk>")
    max_size: int = Field(20_000, ge=10)


class TrainParams(LoopParams):
    """Defaults: the configuration measured to beat the n-gram on the default corpus (bench/generator.py)."""

    cell: Literal["rnn_tanh", "rnn_relu", "lstm", "gru"] = "lstm"
    embed_dim: int = Field(64, ge=2)
    hidden_size: int = Field(512, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between layers and before the decoder")
    embed_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    bptt: int = Field(64, ge=2, description="window length of truncated backpropagation through time")
    monitor: Literal["val_accuracy", "val_loss"] = "val_loss"
    max_steps: int = Field(4800, ge=1, description="the budget of optimizer steps (windows of all lanes)")
    eval_every: int = Field(400, ge=1)
    patience: int = Field(3, ge=0)
    lr: float = Field(3e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_ratio: float = Field(0.02, ge=0.0, lt=1.0)
    batch_size: int = Field(32, ge=1, description="lanes of the training stream")


# The bounds a served request's options must keep (SampleParams' fields carry the same ones).
LIMITS = {"max_length": (1, 10_000), "temperature": (0.0, 100.0), "top_k": (0, 1_000_000)}


class SampleParams(Section):
    """Defaults of generation (the CLI and the served model take overrides, checked against LIMITS)."""

    max_length: int = Field(200, ge=LIMITS["max_length"][0], le=LIMITS["max_length"][1])
    temperature: float = Field(0.8, ge=LIMITS["temperature"][0], le=LIMITS["temperature"][1], description="0: greedy")
    top_k: int = Field(0, ge=LIMITS["top_k"][0], le=LIMITS["top_k"][1], description="the k likeliest units; 0: all")
    seed: int = 13


class EvaluateParams(Section):
    baseline: bool = Field(True, description="also fit a modified Kneser-Ney n-gram on the same split")
    ngram_order_limit: int = Field(
        30, ge=1, le=100, description="orders grow until validation stops improving; this is only a safety net"
    )
    mixture: Literal["auto", "on", "off"] = Field(
        "auto",
        description="serve the network's next-unit distribution mixed with a modified Kneser-Ney n-gram's, "
        "weight and order chosen on validation: auto when it lowers validation bpc below the network's alone, "
        "on always, off never (the network alone)",
    )
    mixture_max_order: int | None = Field(
        None,
        ge=1,
        le=100,
        description="the mixed n-gram's order at most (sampling time grows with it); null: any order fitted",
    )
    temperatures: list[float] = Field(default_factory=lambda: [0.5, 1.0], min_length=1)
    prompts: list[str] = Field(default_factory=lambda: ["The movie", "This film is"], min_length=1)


class GeneratorRegisterParams(RegisterParams):
    model_name: str = Field("sentipipe-generator", min_length=1, pattern=r"^[A-Za-z0-9][\w.\-]*$")
    metric: str = Field("val_bpc", pattern=r"^(val|test)_[a-z0-9_]+$")
    direction: Literal["maximize", "minimize"] = "minimize"


class GeneratorParams(Section):
    experiment: str = Field("sentipipe-generator", min_length=1, description="MLflow experiment (store: tracking)")
    data: DataParams = Field(default_factory=DataParams)
    tokenize: TokenizeParams = Field(default_factory=TokenizeParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: SampleParams = Field(default_factory=SampleParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    register: GeneratorRegisterParams = Field(default_factory=GeneratorRegisterParams)


class GeneratorConfig(Root):
    """params.yaml as the generator's stages read it."""

    tracking: TrackingParams = Field(default_factory=TrackingParams)
    generator: GeneratorParams = Field(default_factory=GeneratorParams)


def load(path: str | Path = "params.yaml") -> GeneratorConfig:
    return config.load(path, GeneratorConfig)


def parse(raw: dict | None, source: str = "params") -> GeneratorConfig:
    return config.parse(raw, GeneratorConfig, source)
