"""The classifier's params: the `classifier:` section of params.yaml, and the file as its stages read it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from sentipipe import config
from sentipipe.config import ComputeParams, DataParams, LoopParams, RegisterParams, Root, Section, TrackingParams


class TokenizeParams(Section):
    lowercase: bool = True
    min_freq: int = Field(1, ge=1)
    max_size: int = Field(50_000, ge=10)
    max_length: int | Literal["auto"] = Field(
        "auto", description="tokens kept per text; auto: length_percentile of the training texts, capped"
    )
    length_percentile: float = Field(99.0, gt=0, le=100)
    length_cap: int = Field(
        512, ge=1, description="the most tokens `auto` may choose; with auto, the served model reads up to this many"
    )
    truncation: Literal["head", "tail", "head+tail"] = Field(
        "head+tail", description="which part of a longer text is kept (head+tail: a quarter from the start)"
    )
    special_tokens: bool = Field(False, description="URLs, numbers, @mentions -> <url>, <num>, <user>")
    batch_size: int = Field(1000, ge=1)
    n_process: int = Field(1, ge=1, description="spaCy worker processes")

    @model_validator(mode="after")
    def _length(self) -> TokenizeParams:
        if isinstance(self.max_length, int) and self.max_length < 1:
            raise ValueError("classifier.tokenize.max_length must be at least 1, or auto")
        return self


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
    open_vocabulary: bool = Field(
        True,
        description="minilm (pieces, encoder): vectors for the encoder's own whole words that the corpus lacks too, "
        "so the served model reads words training never saw (evaluate.open_vocabulary decides their use)",
    )
    seed: int = 13

    @model_validator(mode="after")
    def _consistent(self) -> EmbedParams:
        if self.source == "file" and not self.path:
            raise ValueError("classifier.embed.path is required when classifier.embed.source is 'file'")
        if self.source == "minilm" and self.dim != 384:
            raise ValueError("classifier.embed.dim must be 384 when classifier.embed.source is 'minilm'")
        return self


class TrainParams(LoopParams):
    monitor: Literal["val_accuracy", "val_loss", "val_macro_recall", "val_macro_f1"] = Field(
        "val_accuracy", description="picks the best evaluation and drives early stopping"
    )
    cell: Literal["rnn_tanh", "rnn_relu", "lstm", "gru"] = "lstm"
    bidirectional: bool = True
    hidden_size: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1)
    embed_dropout: float = Field(0.3, ge=0.0, lt=1.0, description="dropout on the embedded tokens")
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="between recurrent layers and before the output")
    pooling: Literal["last", "max", "mean", "attention"] = "max"
    lexical: Literal["none", "words", "bigrams"] = Field(
        "none", description="a bag-of-words path (words, or words and hashed word pairs) added to the logits"
    )
    lexical_init: Literal["zero", "nb"] = Field(
        "zero", description="the lexical path's start: zero, or naive Bayes log-count ratios of its n-grams"
    )
    lexical_scale: float = Field(0.5, gt=0.0, description="lexical_init nb: the ratios times this")
    freeze_embeddings: bool = False
    rule_clauses: int = Field(
        0,
        ge=0,
        description="short negation and contrast clauses labelled by rule, added to training "
        '("the plot is not bad.": positive); binary positive/negative labels only',
    )
    class_weights: Literal["none", "balanced", "auto"] = Field(
        "none",
        description="weights of the classes in the loss; auto: balanced when the monitor averages over the "
        "classes (val_macro_recall, val_macro_f1), none otherwise",
    )

    @property
    def loss_weights(self) -> str:
        """none or balanced: what `class_weights` means for this monitor."""
        if self.class_weights != "auto":
            return self.class_weights
        return "balanced" if self.monitor in ("val_macro_recall", "val_macro_f1") else "none"

    batch_tokens: int | None = Field(
        4096, ge=1, description="padded tokens per batch at most: long documents come fewer to a batch; null: no cap"
    )
    eval_rows: int | None = Field(
        10_000,
        ge=1,
        description="validation rows an evaluation during training scores at most: a seeded sample of a larger "
        "validation split (its cost stays that of the sample); evaluate scores every row; null: all",
    )


# Train keys a search may not vary: where and how reproducibly it runs, and the budget it is judged within.
NOT_SEARCHED = {
    "device",
    "threads",
    "seed",
    "amp",
    "deterministic",
    "monitor",
    "max_minutes",
    "max_steps",
    "max_epochs",
}


class SearchParams(Section):
    """A small seeded search on validation data (Optuna); its trials are MLflow child runs of the training run."""

    trials: int = Field(0, ge=0, description="trials, the params as written first; 0 or 1: no search")
    space: dict[str, list] = Field(
        default_factory=dict, description="classifier.train keys and the values tried (the written value is added)"
    )
    prune_after: float = Field(
        0.5, ge=0.0, description="passes over the training data before a trial trailing the median may be stopped"
    )
    max_minutes: float = Field(240.0, gt=0, description="no new trial starts after this long (recorded)")
    seed: int = 13

    @model_validator(mode="after")
    def _space(self) -> SearchParams:
        for key, values in self.space.items():
            if key not in TrainParams.model_fields:
                raise ValueError(f"classifier.search.space.{key}: not a key of classifier.train")
            if key in NOT_SEARCHED:
                raise ValueError(f"classifier.search.space.{key}: not searched (one of {sorted(NOT_SEARCHED)})")
            if not isinstance(values, list) or not values:
                raise ValueError(f"classifier.search.space.{key}: a non-empty list of values")
            for value in values:
                try:
                    TrainParams.model_validate({key: value})
                except ValidationError as exc:
                    problem = exc.errors()[0]["msg"].lower()
                    raise ValueError(f"classifier.search.space.{key}: {value!r} is not allowed: {problem}") from None
        return self


class EvaluateParams(Section):
    """Scoring, and the serving choices made on validation data (shipped with the registered model)."""

    batch_size: int = Field(256, ge=1)
    baseline: bool = Field(True, description="TF-IDF word+char logistic regression, C tuned on val, same splits")
    baseline_stream_chars: int = Field(
        5_000_000,
        ge=0,
        description="training text past this many characters: the baseline's features are hashed and fitted on a "
        "seeded sample of at most baseline_sample_chars characters read in batches (bounded memory; its accuracy "
        "effect: docs/evidence.md)",
    )
    baseline_sample_chars: int = Field(30_000_000, ge=1, description="the hashed baseline's sample, in characters")
    quantize: Literal["auto", "on", "off"] = Field(
        "auto", description="int8 recurrent and linear layers; auto: on when val accuracy moves by <= tolerance"
    )
    quantize_tolerance: float = Field(
        0.003, ge=0.0, le=1.0, description="val accuracy change allowed (0.003: 0.3 points)"
    )
    calibrate: bool = Field(True, description="temperature scaling fitted on validation logits")
    unseen_words: Literal["auto", "subwords", "unk"] = Field(
        "auto",
        description="a word not in the vocabulary: its spelling's nearest words' vectors, or <unk>; "
        "auto: subwords unless they cost val accuracy beyond quantize_tolerance and more than they gain on the "
        "validation behaviour cases (binary labels)",
    )
    open_vocabulary: Literal["auto", "on", "off"] = Field(
        "auto",
        description="a word the vocabulary lacks but the embed stage's open vocabulary holds reads its pretrained "
        "vector; auto: on unless it costs val accuracy beyond quantize_tolerance",
    )
    blend: Literal["auto", "off"] = Field(
        "auto",
        description="serve the network's log-probabilities mixed with the TF-IDF reference's, (1 - w) x network + "
        "w x reference, w in 0, 0.1 ... 0.9 chosen on val by register.metric (0: the network alone; needs baseline); "
        "off: the network alone",
    )
    behaviour: bool = Field(True, description="run the behavioural suite (binary positive/negative labels only)")
    explain_errors: int = Field(20, ge=0, description="most confident test errors explained on an HTML page")


class DistillParams(Section):
    """A recurrent student taught by a fine-tuned encoder (stage teacher); the student alone is served."""

    enabled: bool = Field(False, description="train a teacher and distil it; off: train on the labels alone")
    teacher: str = Field(
        "minilm",
        min_length=1,
        description="the encoder the teacher fine-tunes: minilm (MiniLM-L6, offline), an installed offline model "
        "package, or a local Hugging Face checkpoint folder (config.json, weights, tokenizer); general-purpose "
        "encoders only",
    )
    teacher_epochs: int = Field(3, ge=1)
    teacher_lr: float = Field(5e-5, gt=0.0)
    teacher_batch_size: int = Field(32, ge=1)
    teacher_max_length: int = Field(128, ge=8, description="word pieces per text the teacher reads")
    variants: int = Field(10, ge=0, description="masked / swapped / n-gram variants per training text")
    contrast: bool = Field(True, description="negation and contrast variants too (binary corpora)")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the teacher's logits; 1 - alpha: the labels")
    seed: int = 13


class ClassifierRegisterParams(RegisterParams):
    behaviour_floor: float | None = Field(
        None, ge=0.0, le=1.0, description="the behavioural suite's overall pass rate a champion must reach"
    )
    model_name: str = Field("sentipipe-classifier", min_length=1, pattern=r"^[A-Za-z0-9][\w.\-]*$")
    metric: str = Field(
        "val_accuracy",
        pattern=r"^val_[a-z0-9_]+$",
        description="a validation figure of reports/classifier/metrics.json: val_accuracy, val_macro_recall, "
        "val_macro_f1, val_log_loss, ... (test figures are reported, never decided on)",
    )


class ClassifierParams(Section):
    experiment: str = Field("sentipipe-classifier", min_length=1, description="MLflow experiment")
    tokenize: TokenizeParams = Field(default_factory=TokenizeParams)
    embed: EmbedParams = Field(default_factory=EmbedParams)
    train: TrainParams = Field(default_factory=TrainParams)
    search: SearchParams = Field(default_factory=SearchParams)
    distill: DistillParams = Field(default_factory=DistillParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    register: ClassifierRegisterParams = Field(default_factory=ClassifierRegisterParams)


class ClassifierConfig(Root):
    """params.yaml as the classifier's stages read it."""

    data: DataParams = Field(default_factory=DataParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    compute: ComputeParams = Field(default_factory=ComputeParams)
    classifier: ClassifierParams = Field(default_factory=ClassifierParams)


def load(path: str | Path = "params.yaml") -> ClassifierConfig:
    return config.load(path, ClassifierConfig)


def parse(raw: dict | None, source: str = "params") -> ClassifierConfig:
    return config.parse(raw, ClassifierConfig, source)
