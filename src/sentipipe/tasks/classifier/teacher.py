"""Stage teacher: a pretrained encoder fine-tuned as a classifier, and its soft targets for the recurrent student.

With `classifier.distill.enabled`, the offline encoder `classifier.distill.teacher`
names (default: MiniLM-L6, the weights the embed stage reads; or any installed
model package or local Hugging Face checkpoint folder, see encoders.py) is
fine-tuned end to end on the training split (mean pooling, a linear head, AdamW
with warm-up and linear decay), keeping its best epoch on validation data, in an
MLflow run of its own that records which encoder it was and its training data.
It then labels the training texts and their variants (augment.py, masks written
as the encoder's own mask token) with its logits: the student learns those
(train.py), and serves alone: no transformer at prediction time. Disabled, the
stage writes an empty set of soft targets and trains nothing.

Memory stays bounded as the corpus grows: every split's word pieces are held as
two arrays (`soft_targets.Pieces`), not Python lists, and the training split is read, varied,
labelled and written a chunk of compute.chunk_rows texts at a time (a contrast
edit pairs texts of the same chunk), the soft targets appended to their file
chunk by chunk. The labelling runs here or (compute.engine: ray) on Ray workers
that each rebuild the fine-tuned teacher once from its weights.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import islice
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from transformers import AutoConfig, AutoTokenizer

from sentipipe import compute, tracking
from sentipipe.config import ComputeParams
from sentipipe.data.paths import prepared
from sentipipe.errors import ConfigError
from sentipipe.io import require, write_json, write_parquet_chunks
from sentipipe.tasks.classifier import augment, encoders, vocab_file
from sentipipe.tasks.classifier import soft_targets as targets
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.paths import (
    EMBEDDINGS,
    SOFT_TARGETS,
    TEACHER_REPORT,
    TEACHER_TEST_LOGITS,
    VOCAB,
)
from sentipipe.tasks.classifier.teacher_model import TeacherNetwork, fine_tune, rebuilt, teacher_logits
from sentipipe.tasks.classifier.teacher_off import TEACHER_CHECKPOINT, teacher_off
from sentipipe.training import checkpoints
from sentipipe.training.device import resolve_device


def label(
    model: TeacherNetwork,
    chunks: Iterable[targets.Pieces],
    pad: int,
    device: torch.device,
    folder: str | Path,
    engine: ComputeParams,
    usage: compute.Usage,
) -> Iterator[np.ndarray]:
    """The teacher's logits for each chunk of texts, in order, as they come: here or on Ray workers."""
    if engine.engine == "local":
        build = lambda: model  # noqa: E731
    else:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        build, device = partial(rebuilt, state, model.head.out_features, str(folder)), torch.device("cpu")
    return compute.map_with(build, partial(teacher_logits, pad=pad, device=device), chunks, engine, usage)


def load_encoder(folder: str | Path, value: str):
    """The checkpoint's tokenizer and config, or an error naming the param (an architecture transformers lacks)."""
    try:
        pieces_of = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{encoders.KEY} {value!r}: transformers cannot load {folder}: {e}") from None
    if pieces_of.pad_token_id is None:
        raise ConfigError(f"{encoders.KEY} {value!r}: its tokenizer has no padding token: not a BERT-like encoder")
    return pieces_of, config


def max_length(pieces_of, config, wanted: int) -> int:
    """`teacher_max_length`, capped at what the encoder reads (its tokenizer's limit, else its positions less two:
    RoBERTa-like models number positions after the padding id)."""
    limit = pieces_of.model_max_length
    if not 0 < limit < 100_000:  # transformers' sentinel for "not set"
        limit = getattr(config, "max_position_embeddings", wanted + 2) - 2
    return min(wanted, limit)


PROGRESS_TEXTS = 50_000  # training texts between progress lines


def teacher(params: ClassifierConfig) -> dict:
    d = params.classifier.distill
    if not d.enabled:
        return teacher_off(params)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    encoder = encoders.resolve(d.teacher)
    require(VOCAB, EMBEDDINGS, *(prepared(s) for s in ("train", "val", "test")))
    torch.manual_seed(d.seed)
    device = resolve_device(params.classifier.train.device)
    words = vocab_file.read(VOCAB)
    index = {label: i for i, label in enumerate(words.labels)}
    labels_of = lambda column: pd.Series(column).map(index).to_numpy(dtype=np.int64)  # noqa: E731
    y = {s: labels_of(pd.read_parquet(prepared(s), columns=["label"])["label"]) for s in ("train", "val", "test")}
    pieces_of, config = load_encoder(encoder.path, d.teacher)
    length = max_length(pieces_of, config, d.teacher_max_length)
    if length < d.teacher_max_length:
        print(
            f"teacher: {encoder.model} reads at most {length} word pieces (teacher_max_length {d.teacher_max_length})"
        )
    truncation = params.classifier.tokenize.truncation  # a long text: the teacher reads the parts the student reads
    encode = partial(targets.encoded, pieces_of, length, policy=truncation)
    rows, scratch = params.compute.chunk_rows, tempfile.TemporaryDirectory(prefix="sentipipe-teacher-")
    spill = Path(scratch.name)
    pieces = {
        s: targets.Pieces.of((encode(texts) for texts, _ in targets.chunks(s, rows)), spill / f"{s}.pieces")
        for s in ("train", "val", "test")
    }

    # A killed stage resumes after its last finished epoch, or its last labelled part, if the params, data,
    # encoder and code are the same (the variants are made again, the same ones: only their labels are kept).
    expected = checkpoints.fingerprint(
        {
            **d.model_dump(),
            "max_length": length,
            "device": device.type,
            "weights": encoder.weights_sha256,
            "chunk_rows": rows,
            "truncation": truncation,
        },
        {str(f): tracking.file_md5(f) for f in (*(prepared(s) for s in ("train", "val", "test")), VOCAB, EMBEDDINGS)},
    )
    resume = checkpoints.load(TEACHER_CHECKPOINT, expected, fresh=False)  # delete the file to start afresh
    earlier = resume["seconds"] if resume else 0.0
    tuning = time.perf_counter()

    def save(state: dict) -> None:
        seconds = earlier + time.perf_counter() - tuning
        checkpoints.save(TEACHER_CHECKPOINT, {**state, "fingerprint": expected, "complete": False, "seconds": seconds})

    model, history = fine_tune(pieces, y, d, pieces_of.pad_token_id, device, encoder.path, resume, save)
    train_seconds = earlier + time.perf_counter() - tuning
    TEACHER_TEST_LOGITS.parent.mkdir(parents=True, exist_ok=True)
    np.save(TEACHER_TEST_LOGITS, teacher_logits(model, pieces["test"], pieces_of.pad_token_id, device))
    del pieces
    scratch.cleanup()

    rng = np.random.default_rng(d.seed)
    swapper = augment.Swapper(
        words.vocab.tokens, np.array([words.counts.get(t, 0) for t in words.vocab.tokens]), np.load(EMBEDDINGS), rng
    )
    mask = pieces_of.mask_token or pieces_of.unk_token  # the encoder's own ([MASK] for BERT, <mask> for MPNet)
    varied = (
        item
        for texts, labels in targets.chunks("train", rows)
        for item in targets.varied(
            texts, labels_of(labels), words.tokenizer, d, rng, swapper, mask, len(words.labels) == 2
        )
    )
    parts = (([kept for kept, _ in part], [text for _, text in part]) for part in targets.parts(varied, rows))
    usage, kinds, scored = compute.Usage(params.compute.engine), Counter(), 0
    labelled: list[np.ndarray] = list(resume.get("logits", [])) if resume else []  # each part's, in order
    kept_parts = len(labelled)
    if kept_parts:
        print(f"teacher: {kept_parts} labelled parts of {rows:,} texts kept by the checkpoint: not labelled again")
    tuned = {
        "epoch": d.teacher_epochs,
        "history": history,
        "best": max(h["val_accuracy"] for h in history),
        "best_state": model.state_dict(),
    }
    start = time.perf_counter()

    def frame_of(kept: list, logits: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame(kept, columns=["tokens", "label", "kind"])
        frame["logits"] = [row.tolist() for row in logits]
        kinds.update(frame["kind"])
        return frame[targets.COLUMNS]

    def frames() -> Iterator[pd.DataFrame]:
        nonlocal scored
        shown = 0
        for (kept, _), logits in zip(islice(parts, kept_parts), labelled[:kept_parts], strict=True):
            if len(kept) != len(logits):
                raise RuntimeError(f"{TEACHER_CHECKPOINT}: a kept part does not match its texts; delete the file")
            yield frame_of(kept, logits)
        run = lambda items: label(  # noqa: E731
            model, items, pieces_of.pad_token_id, device, encoder.path, params.compute, usage
        )
        inputs = ((kept, targets.Pieces.of([encode(texts)])) for kept, texts in parts)
        for (kept, _), logits in compute.with_inputs(inputs, lambda items: run(p for _, p in items)):
            labelled.append(logits)
            # a kill from here on labels only the parts after this one; the fine-tuning's time stays its own
            state = {**tuned, "logits": labelled, "fingerprint": expected, "complete": False, "seconds": train_seconds}
            checkpoints.save(TEACHER_CHECKPOINT, state)
            scored += len(kept)
            frame = frame_of(kept, logits)
            if kinds["train"] >= shown + PROGRESS_TEXTS:
                shown = kinds["train"]
                print(f"teacher: {shown:,} training texts and their variants labelled", flush=True)
            yield frame

    written = write_parquet_chunks(SOFT_TARGETS, frames(), targets.SCHEMA)
    score_seconds = time.perf_counter() - start
    soft = {"rows": written, "by_kind": {k: int(v) for k, v in kinds.most_common()}}

    best = max(history, key=lambda h: h["val_accuracy"])
    parameters = sum(p.numel() for p in model.encoder.parameters())
    report = {
        "enabled": True,
        "teacher": {
            **encoder.record(),
            "parameters": int(parameters),
            "max_length": int(length),
            "truncation": truncation,
        },
        "best_epoch": best["epoch"],
        "val_accuracy": best["val_accuracy"],
        "test_accuracy": best["test_accuracy"],
        "history": history,
        "train_seconds": round(train_seconds, 1),
        "resumed_after_epoch": resume["epoch"] if resume else None,  # a killed stage's epochs were not run again
        "resumed_labelled_parts": kept_parts,  # ...nor its labelled parts (compute.chunk_rows texts each)
        "soft_targets": int(soft["rows"]),
        "by_kind": soft["by_kind"],
        "scored_texts_per_second": round(scored / max(score_seconds, 1e-9), 1),
        "device": str(device),
    }
    tracking.configure(params.tracking, params.classifier.experiment)
    with mlflow.start_run(run_name="teacher") as run:
        mlflow.set_tags(
            {
                "sentipipe.role": "teacher",
                "teacher.model": f"{encoder.model} ({encoder.package or encoder.source}), fine-tuned",
                "teacher.path": encoder.path,
                "teacher.training_data": encoder.training_data,
                "teacher.licence": encoder.licence,
            }
        )
        mlflow.log_params({f"distill.{k}": v for k, v in d.model_dump().items()})
        mlflow.log_params(
            {
                "teacher.parameters": int(parameters),
                "teacher.weights_sha256": encoder.weights_sha256,
                "teacher.max_length": length,
                "teacher.truncation": truncation,
            }
        )
        for h in history:
            mlflow.log_metrics({"curve_val_accuracy": h["val_accuracy"]}, step=h["epoch"])
        mlflow.log_metrics(
            {k: float(report[k]) for k in ("val_accuracy", "test_accuracy", "train_seconds", "soft_targets")}
        )
        report["run_id"] = run.info.run_id
    write_json(TEACHER_REPORT, report)
    checkpoints.save(
        TEACHER_CHECKPOINT, {"fingerprint": expected, "complete": True}
    )  # done: the next run starts afresh
    print(
        f"teacher ({encoder.model}, {parameters / 1e6:.1f}M parameters): val accuracy {report['val_accuracy']:.4f}, "
        f"test {report['test_accuracy']:.4f} "
        f"(epoch {best['epoch']}); {soft['rows']} soft targets ({report['by_kind']}) in {score_seconds:.0f}s, "
        f"{usage.summary()}"
    )
    return report
