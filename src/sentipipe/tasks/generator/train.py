"""Stage train (generator): fit the network with truncated BPTT, through the same loop and tracked run."""

from __future__ import annotations

import numpy as np

from sentipipe import tracking
from sentipipe.errors import DataError
from sentipipe.io import require
from sentipipe.tasks.generator.network import GeneratorNetwork, GeneratorSpec
from sentipipe.tasks.generator.objective import NextUnit
from sentipipe.tasks.generator.params import GeneratorConfig
from sentipipe.tasks.generator.paths import CHECKPOINT, HISTORY, MODEL, TRAIN_REPORT, VOCAB, stream
from sentipipe.tasks.generator.sampler import Generator
from sentipipe.tasks.generator.units import read_vocab
from sentipipe.text.vocab import PAD_ID
from sentipipe.training.run import TrainJob, device_and_dist, run_training, wrap


def train(params: GeneratorConfig, fresh: bool = False) -> dict:
    g = params.generator
    p = g.train
    train_path, val_path = stream("train"), stream("val")
    require(train_path, val_path, VOCAB)
    device, dist = device_and_dist(p)
    vocab, settings, stats = read_vocab(VOCAB)
    spec = GeneratorSpec(
        vocab_size=len(vocab),
        embed_dim=p.embed_dim,
        cell=p.cell,
        hidden_size=p.hidden_size,
        num_layers=p.num_layers,
        dropout=p.dropout,
        embed_dropout=p.embed_dropout,
    )
    model = wrap(GeneratorNetwork(spec).to(device), device, dist)
    train_stream, val_stream = np.load(train_path), np.load(val_path)
    lanes = p.batch_size * dist.world_size
    if len(train_stream) < lanes * 2:
        raise DataError(f"generator: {len(train_stream)} training units cannot fill {lanes} lanes; lower batch_size")
    objective = NextUnit(train_stream, val_stream, lanes, p.bptt, stats["val"]["chars_per_unit"], exclude=(PAD_ID,))
    job = TrainJob(
        loop=p,
        tracking=params.tracking,
        experiment=g.experiment,
        logged_params=tracking.flatten(g.model_dump()),
        inputs={"training": train_path, "validation": val_path},
        lineage=[train_path, val_path, VOCAB],
        # bits per character depend on the units and the vocabulary (an unknown unit is cheap to predict):
        # the registry compares a model only with a champion validated on the same id stream
        tags={tracking.VALIDATION_TAG: tracking.file_md5(val_path)},
        checkpoint=CHECKPOINT,
        report=TRAIN_REPORT,
        history=HISTORY,
        save_model=lambda bare: Generator(bare, vocab, settings, device).save(MODEL),
    )
    parameters = sum(t.numel() for t in getattr(model, "module", model).parameters())
    return run_training(job, model, objective, device, dist, fresh, {"parameters": parameters})
