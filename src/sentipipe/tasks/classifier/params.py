"""The classifier's params: the `classifier:` section of params.yaml, and the file as its stages read it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from sentipipe import config
from sentipipe.config import DataParams, LoopParams, RegisterParams, Root, Section, TrackingParams


class TokenizeParams(Section):
    lowercase: bool = True
    min_freq: int = Field(1, ge=1)
    max_size: int = Field(50_000, ge=10)
    max_length: int = Field(256, ge=1)
    special_tokens: bool = Field(False, description="URLs, numbers, @mentions -> <url>, <num>, <user>")
    batch_size: int = Field(1000, ge=1)
    n_process: int = Field(1, ge=1, description="spaCy worker processes")


class EmbedParams(Section):
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

    @model_validator(mode="after")
    def _consistent(self) -> EmbedParams:
        if self.source == "file" and not self.path:
            raise ValueError("classifier.embed.path is required when classifier.embed.source is 'file'")
        if self.source == "minilm" and self.dim != 384:
            raise ValueError("classifier.embed.dim must be 384 when classifier.embed.source is 'minilm'")
        return self


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


class EvaluateParams(Section):
    batch_size: int = Field(256, ge=1)
    baseline: bool = Field(True, description="also score TF-IDF logistic regression on the same split")


class ClassifierRegisterParams(RegisterParams):
    model_name: str = Field("sentipipe-classifier", min_length=1, pattern=r"^[A-Za-z0-9][\w.\-]*$")
    metric: str = Field(
        "val_accuracy",
        pattern=r"^(val|test)_[a-z0-9_]+$",
        description="a key of reports/classifier/metrics.json as <split>_<name>: val_macro_f1, val_log_loss, ...",
    )


class ClassifierParams(Section):
    experiment: str = Field("sentipipe-classifier", min_length=1, description="MLflow experiment")
    tokenize: TokenizeParams = Field(default_factory=TokenizeParams)
    embed: EmbedParams = Field(default_factory=EmbedParams)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    register: ClassifierRegisterParams = Field(default_factory=ClassifierRegisterParams)


class ClassifierConfig(Root):
    """params.yaml as the classifier's stages read it."""

    data: DataParams = Field(default_factory=DataParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    classifier: ClassifierParams = Field(default_factory=ClassifierParams)


def load(path: str | Path = "params.yaml") -> ClassifierConfig:
    return config.load(path, ClassifierConfig)


def parse(raw: dict | None, source: str = "params") -> ClassifierConfig:
    return config.parse(raw, ClassifierConfig, source)
