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
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

from sentipipe import compute, tracking
from sentipipe.config import ComputeParams
from sentipipe.data.paths import prepared
from sentipipe.errors import ConfigError
from sentipipe.io import require, write_json, write_parquet, write_parquet_chunks
from sentipipe.tasks.classifier import augment, encoders, vocab_file
from sentipipe.tasks.classifier import soft_targets as targets
from sentipipe.tasks.classifier.params import ClassifierConfig, DistillParams
from sentipipe.tasks.classifier.paths import (
    EMBEDDINGS,
    MODELS,
    SOFT_TARGETS,
    TEACHER_REPORT,
    TEACHER_TEST_LOGITS,
    VOCAB,
)
from sentipipe.text.batching import bucketed_batches
from sentipipe.text.encoding import release
from sentipipe.training import checkpoints
from sentipipe.training.device import resolve_device


class TeacherNetwork(nn.Module):
    def __init__(self, classes: int, folder: str | Path):
        super().__init__()
        # float32 whatever the checkpoint's dtype: a half-precision file would fine-tune badly on a CPU
        self.encoder = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(self.encoder.config.hidden_size, classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return self.head(self.dropout((hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)))


def _padded(pieces: list[np.ndarray], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in pieces)
    ids = torch.full((len(pieces), width), pad, dtype=torch.long)
    mask = torch.zeros((len(pieces), width), dtype=torch.long)
    for row, p in enumerate(pieces):
        ids[row, : len(p)], mask[row, : len(p)] = torch.from_numpy(p.astype(np.int64)), 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def teacher_logits(model: TeacherNetwork, pieces: targets.Pieces, pad: int, device: torch.device) -> np.ndarray:
    model.eval()
    out = np.zeros((len(pieces), model.head.out_features), dtype=np.float32)
    for index in bucketed_batches(pieces.lengths, 128, False, max_tokens=128 * 64):
        out[index] = model(*_padded([pieces[i] for i in index], pad, device)).float().cpu().numpy()
    return out


def rebuilt(state: dict, classes: int, folder: str) -> TeacherNetwork:
    """The fine-tuned teacher on a Ray worker: the encoder's architecture from its folder, the weights sent along."""
    model = TeacherNetwork(classes, folder)
    model.load_state_dict(state)
    return model


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


# Rewritten after every fine-tuning epoch (a DVC persist output beside the student's checkpoint); here, not in
# paths.py, which every stage reads: a path only this stage and its tests use
TEACHER_CHECKPOINT = MODELS / "teacher_checkpoint.pt"
TRAIN_PROGRESS_TEXTS = 10_000  # training texts between progress lines while fine-tuning (a backward pass each)


def fine_tune(
    pieces: dict[str, targets.Pieces],
    y: dict,
    d: DistillParams,
    pad: int,
    device: torch.device,
    folder: str | Path,
    resume: dict | None = None,
    save: Callable[[dict], None] | None = None,
) -> tuple[TeacherNetwork, list]:
    """Fine-tune on train, evaluate on val after every epoch, keep the best epoch's weights.

    After every epoch `save` gets the whole state (weights, optimizer, schedule, both random generators, the
    history and the best epoch's weights); from such a `resume` the remaining epochs run as they would have
    without the kill (bit for bit on a CPU), and with none left the best epoch's weights come straight back.
    """
    model = TeacherNetwork(int(max(y["train"].max(), y["val"].max())) + 1, folder).to(device)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=d.teacher_lr)
    rng = np.random.default_rng(d.seed)
    lengths = pieces["train"].lengths
    total = d.teacher_epochs * int(np.ceil(len(lengths) / d.teacher_batch_size))
    warmup = max(1, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    labels = torch.tensor(y["train"], device=device)
    history, best, best_state, done = [], -1.0, None, 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        schedule.load_state_dict(resume["schedule"])
        rng.bit_generator.state = resume["numpy_rng"]
        torch.set_rng_state(resume["torch_rng"])
        history, best, best_state, done = resume["history"], resume["best"], resume["best_state"], resume["epoch"]
        print(f"teacher: resumed after epoch {done}/{d.teacher_epochs} from its checkpoint", flush=True)
    for epoch in range(done + 1, d.teacher_epochs + 1):
        model.train()
        start, seen, shown = time.perf_counter(), 0, 0
        for index in bucketed_batches(lengths, d.teacher_batch_size, True, rng):
            batch = _padded([pieces["train"][i] for i in index], pad, device)
            # The pieces' pages this step mapped go back at once, as the student's ids do (objective.py): random
            # batches would otherwise map the whole pieces file, in large folios, into this process.
            release(pieces["train"].flat)
            loss = nn.functional.cross_entropy(model(*batch), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            seen += len(index)
            if seen >= shown + TRAIN_PROGRESS_TEXTS:  # a long epoch on a CPU says how far it is and how fast it goes
                shown = seen
                rate = seen / (time.perf_counter() - start)
                print(
                    f"teacher: epoch {epoch}/{d.teacher_epochs}: {seen:,} of {len(lengths):,} training texts, "
                    f"{rate:.0f} texts/s (about {(len(lengths) - seen) / rate / 60:.0f} min left in the epoch)",
                    flush=True,
                )
        accuracy = {
            s: float((teacher_logits(model, pieces[s], pad, device).argmax(1) == y[s]).mean()) for s in ("val", "test")
        }
        history.append(
            {
                "epoch": epoch,
                "val_accuracy": accuracy["val"],
                "test_accuracy": accuracy["test"],
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(
            f"teacher: epoch {epoch}/{d.teacher_epochs}: val accuracy {accuracy['val']:.4f} "
            f"({history[-1]['seconds']}s)",
            flush=True,
        )
        if accuracy["val"] > best:
            best, best_state = accuracy["val"], {k: v.detach().clone() for k, v in model.state_dict().items()}
        if save is not None:
            save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "numpy_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "best": best,
                    "best_state": best_state,
                }
            )
    model.load_state_dict(best_state)
    return model, history


PROGRESS_TEXTS = 50_000  # training texts between progress lines


def teacher(params: ClassifierConfig, fresh: bool = False) -> dict:
    d = params.classifier.distill
    if not d.enabled:
        write_parquet(SOFT_TARGETS, pd.DataFrame({c: [] for c in targets.COLUMNS}))
        report = {"enabled": False}
        write_json(TEACHER_REPORT, report)
        checkpoints.save(TEACHER_CHECKPOINT, {"complete": True})
        print("teacher: classifier.distill.enabled is false: no teacher, no soft targets")
        return report
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
    encode = partial(targets.encoded, pieces_of, length)
    rows, scratch = params.compute.chunk_rows, tempfile.TemporaryDirectory(prefix="sentipipe-teacher-")
    spill = Path(scratch.name)
    pieces = {
        s: targets.Pieces.of((encode(texts) for texts, _ in targets.chunks(s, rows)), spill / f"{s}.pieces")
        for s in ("train", "val", "test")
    }

    # a killed stage resumes after its last finished epoch, if the params, data, encoder and code are the same
    expected = checkpoints.fingerprint(
        {**d.model_dump(), "max_length": length, "device": device.type, "weights": encoder.weights_sha256},
        {s: tracking.file_md5(prepared(s)) for s in ("train", "val", "test")},
    )
    resume = checkpoints.load(TEACHER_CHECKPOINT, expected, fresh)
    earlier = resume["seconds"] if resume else 0.0
    start = time.perf_counter()

    def save(state: dict) -> None:
        seconds = earlier + time.perf_counter() - start
        checkpoints.save(TEACHER_CHECKPOINT, {**state, "fingerprint": expected, "complete": False, "seconds": seconds})

    model, history = fine_tune(pieces, y, d, pieces_of.pad_token_id, device, encoder.path, resume, save)
    train_seconds = earlier + time.perf_counter() - start
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
    start = time.perf_counter()

    def frames() -> Iterator[pd.DataFrame]:
        nonlocal scored
        shown = 0
        run = lambda items: label(  # noqa: E731
            model, items, pieces_of.pad_token_id, device, encoder.path, params.compute, usage
        )
        inputs = ((kept, targets.Pieces.of([encode(texts)])) for kept, texts in parts)
        for (kept, _), logits in compute.with_inputs(inputs, lambda items: run(p for _, p in items)):
            frame = pd.DataFrame(kept, columns=["tokens", "label", "kind"])
            frame["logits"] = [row.tolist() for row in logits]
            kinds.update(frame["kind"])
            scored += len(frame)
            if kinds["train"] >= shown + PROGRESS_TEXTS:
                shown = kinds["train"]
                print(f"teacher: {shown:,} training texts and their {scored - shown:,} variants labelled", flush=True)
            yield frame[targets.COLUMNS]

    written = write_parquet_chunks(SOFT_TARGETS, frames(), targets.SCHEMA)
    score_seconds = time.perf_counter() - start
    soft = {"rows": written, "by_kind": {k: int(v) for k, v in kinds.most_common()}}

    best = max(history, key=lambda h: h["val_accuracy"])
    parameters = sum(p.numel() for p in model.encoder.parameters())
    report = {
        "enabled": True,
        "teacher": {**encoder.record(), "parameters": int(parameters), "max_length": int(length)},
        "best_epoch": best["epoch"],
        "val_accuracy": best["val_accuracy"],
        "test_accuracy": best["test_accuracy"],
        "history": history,
        "train_seconds": round(train_seconds, 1),
        "resumed_after_epoch": resume["epoch"] if resume else None,  # a killed stage's epochs were not run again
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
