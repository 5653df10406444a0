"""Stage train: fit the classifier in one MLflow run; resume from its checkpoint when it matches.

Under torchrun every rank trains on its shard of each epoch; rank 0 alone
talks to MLflow and writes outputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from sentipipe import tracking
from sentipipe.io import read_json, require
from sentipipe.tasks.classifier import vocab_file
from sentipipe.tasks.classifier.network import ClassifierSpec, build_model
from sentipipe.tasks.classifier.objective import Classification
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.paths import (
    CHECKPOINT,
    EMBEDDINGS,
    HISTORY,
    MODEL,
    SOFT_TARGETS,
    TEACHER_REPORT,
    TRAIN_REPORT,
    VOCAB,
    tokens,
)
from sentipipe.tasks.classifier.predictor import Predictor
from sentipipe.text.batching import padding_fraction
from sentipipe.text.encoding import EncodedSplit, encode, load_split
from sentipipe.training.run import TrainJob, device_and_dist, run_training, wrap


def soft_target_split(words: vocab_file.VocabFile) -> tuple[EncodedSplit, np.ndarray]:
    """The teacher stage's rows (the training texts, then their variants) as ids, labels (-1: none) and logits."""
    soft = pd.read_parquet(SOFT_TARGETS)
    encoded = encode([list(t) for t in soft["tokens"]], soft["label"].to_numpy(), words.vocab)
    return encoded, np.stack(soft["logits"].map(np.asarray).to_list())


def logged_params(params: ClassifierConfig) -> dict[str, str]:
    """What the run records as params: the corpus's and the classifier's sections."""
    dumped = params.model_dump()
    return {**tracking.flatten(dumped["data"], "data."), **tracking.flatten(dumped["classifier"])}


def train(params: ClassifierConfig, fresh: bool = False) -> dict:
    p = params.classifier.train
    train_path, val_path = tokens("train"), tokens("val")
    require(train_path, val_path, VOCAB, EMBEDDINGS, TEACHER_REPORT, SOFT_TARGETS)
    device, dist = device_and_dist(p)
    words = vocab_file.read(VOCAB)
    matrix = torch.from_numpy(np.load(EMBEDDINGS))
    spec = ClassifierSpec(
        vocab_size=len(words.vocab),
        embed_dim=int(matrix.shape[1]),
        num_classes=len(words.labels),
        cell=p.cell,
        hidden_size=p.hidden_size,
        num_layers=p.num_layers,
        bidirectional=p.bidirectional,
        dropout=p.dropout,
        embed_dropout=p.embed_dropout,
        pooling=p.pooling,
        lexical=p.lexical,
    )
    model = wrap(build_model(spec, matrix, freeze=p.freeze_embeddings).to(device), device, dist)
    train_split, val_split = load_split(train_path), load_split(val_path)
    classes, soft, teacher = len(words.labels), None, read_json(TEACHER_REPORT)
    if teacher.get("enabled"):
        train_split, soft = soft_target_split(words)
        print(
            f"train: distilling the teacher's {len(soft)} soft targets "
            f"(the teacher's val accuracy: {teacher['val_accuracy']:.4f})"
        )
    objective = Classification(
        train_split,
        val_split,
        p.batch_size,
        classes,
        p.class_weights,
        device,
        p.batch_tokens,
        soft,
        params.classifier.distill.alpha,
    )
    job = TrainJob(
        loop=p,
        tracking=params.tracking,
        experiment=params.classifier.experiment,
        logged_params=logged_params(params),
        inputs={"training": train_path, "validation": val_path},
        lineage=[train_path, val_path, VOCAB, EMBEDDINGS, SOFT_TARGETS],
        tags={"teacher.run_id": teacher["run_id"]} if teacher.get("enabled") else {},
        checkpoint=CHECKPOINT,
        report=TRAIN_REPORT,
        history=HISTORY,
        save_model=lambda bare: Predictor(bare, words.vocab, words.labels, words.tokenizer, device).save(MODEL),
    )
    padding = round(padding_fraction(train_split, p.batch_size, True, p.seed, p.batch_tokens), 4)
    return run_training(job, model, objective, device, dist, fresh, {"padding_fraction": padding})
