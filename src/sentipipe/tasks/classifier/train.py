"""Stage train: fit the classifier in one MLflow run; resume from its checkpoint when it matches.

Under torchrun every rank trains on its shard of each epoch; rank 0 alone
talks to MLflow and writes outputs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from sentipipe import tracking
from sentipipe.data.paths import prepared
from sentipipe.io import parquet_batches, read_json, require
from sentipipe.tasks.classifier import augment, behaviour, lexical, vocab_file
from sentipipe.tasks.classifier.network import ClassifierSpec, build_model
from sentipipe.tasks.classifier.objective import Classification
from sentipipe.tasks.classifier.params import ClassifierConfig, TrainParams
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
from sentipipe.text.encoding import EncodedSplit, SplitWriter, concatenate, encode, load_split, subset
from sentipipe.text.vocab import UNK_ID
from sentipipe.training.run import TrainJob, device_and_dist, run_training, wrap
from sentipipe.training.search import SearchOutcome, run_search, steps_per_pass

SOFT_BATCH = 5_000  # soft-target rows read at a time


def soft_target_split(words: vocab_file.VocabFile, folder: Path) -> tuple[EncodedSplit, np.ndarray]:
    """The teacher stage's rows (the training texts, then their variants) as ids, labels (-1: none) and logits.

    Read SOFT_BATCH rows at a time, their tokens looked up in Arrow (no Python string per token) and written as
    ids to `folder`, memory-mapped as the tokenized splits are: a million reviews' soft targets, eleven rows a
    review, stay on disk; only the logits are held. An empty row reads as one unknown token, as `encode` does.
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    handle = pq.ParquetFile(SOFT_TARGETS)
    batches = lambda columns: parquet_batches(handle, columns, SOFT_BATCH)  # noqa: E731
    sizes_of = lambda tokens: pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)  # noqa: E731
    # the writer's files are sized first, so the tokens are read twice: once for their count, once for their ids
    total = sum(int(np.maximum(sizes_of(b.column(0)), 1).sum()) for b in batches(["tokens"]))
    rows, known = handle.metadata.num_rows, pa.array(words.vocab.tokens, pa.string())
    logits = None
    with SplitWriter(folder, rows, total) as writer:
        at = 0
        for batch in batches(["tokens", "label", "logits"]):
            n, tokens = batch.num_rows, batch.column("tokens")
            ids = pc.fill_null(pc.index_in(pc.list_flatten(tokens), value_set=known), UNK_ID)
            ids = ids.to_numpy(zero_copy_only=False).astype(np.int32)
            sizes = sizes_of(tokens)
            if (empty := np.flatnonzero(sizes == 0)).size:  # at the end of the rows before it: one unknown token
                ids = np.insert(ids, np.cumsum(sizes)[empty], UNK_ID)
            writer.add_many(ids, np.maximum(sizes, 1), batch.column("label").to_numpy(zero_copy_only=False))
            values = pc.list_flatten(batch.column("logits")).to_numpy(zero_copy_only=False).reshape(n, -1)
            logits = np.empty((rows, values.shape[1]), np.float64) if logits is None else logits
            logits[at : at + n], at = values, at + n
    return load_split(folder), (logits if logits is not None else np.zeros((0, 0), np.float64))


def with_rule_clauses(
    split: EncodedSplit, soft: np.ndarray | None, words: vocab_file.VocabFile, n: int, seed: int, scratch: Path
) -> tuple[EncodedSplit, np.ndarray | None]:
    """The training rows and n negation and contrast clauses labelled by rule (augment.rule_clauses) after them.

    Under distillation a clause's soft target is the teacher's mean logits over the training texts of
    its rule label: the teacher's own voice for that class, not its (wrong) reading of the clause.
    """
    if set(words.labels) != {"negative", "positive"}:  # a rule's label means one of these two, nothing else
        return split, soft
    tokens, labelled = words.vocab.tokens, split.labels >= 0
    exclude = behaviour.held_out()  # both suites stay tests of what was not shown
    n_scan = min(len(split), augment.SUBJECT_ROWS)  # the first rows: a million reviews' ids stay unread here
    found = augment.subjects_of_ids(
        split.ids[: split.offsets[n_scan]], split.offsets[: n_scan + 1], labelled[:n_scan], tokens, exclude
    )
    rows = augment.rule_clauses([], set(tokens), n, np.random.default_rng(seed), exclude, found=found)
    if not rows:
        return split, soft
    index = [words.labels.index("negative"), words.labels.index("positive")]
    labels = np.array([index[y] for _, y in rows], dtype=np.int64)
    extra = encode([w for w, _ in rows], labels, words.vocab)
    merged = concatenate(split, extra, tempfile.mkdtemp(dir=scratch))  # on disk: a split larger than memory
    if soft is not None:
        means = np.stack([soft[split.labels == c].mean(axis=0) for c in range(soft.shape[1])])
        soft = np.concatenate([soft, means[labels]]).astype(soft.dtype)
    print(f"train: {len(rows)} negation and contrast clauses labelled by rule, e.g. {' '.join(rows[0][0])!r}")
    return merged, soft


def logged_params(params: ClassifierConfig) -> dict[str, str]:
    """What the run records as params: the corpus's and the classifier's sections."""
    dumped = params.model_dump()
    return {**tracking.flatten(dumped["data"], "data."), **tracking.flatten(dumped["classifier"])}


def train(params: ClassifierConfig, fresh: bool = False) -> dict:
    p = params.classifier.train
    train_path, val_path = tokens("train"), tokens("val")
    require(train_path, val_path, VOCAB, EMBEDDINGS, TEACHER_REPORT, SOFT_TARGETS, prepared("val"))
    device, dist = device_and_dist(p)
    words = vocab_file.read(VOCAB)
    matrix = torch.from_numpy(np.load(EMBEDDINGS))
    train_split, val_split = load_split(train_path), load_split(val_path)
    classes, soft, teacher = len(words.labels), None, read_json(TEACHER_REPORT)
    scratch = tempfile.TemporaryDirectory(prefix="sentipipe-train-")  # removed when training returns
    if teacher.get("enabled"):
        train_split, soft = soft_target_split(words, Path(tempfile.mkdtemp(dir=scratch.name)))
        print(
            f"train: distilling the teacher's {len(soft)} soft targets "
            f"(the teacher's val accuracy: {teacher['val_accuracy']:.4f})"
        )
    corpus_rows, augmented = (train_split, soft), {}

    def rows_of(t: TrainParams) -> tuple[EncodedSplit, np.ndarray | None]:
        """The training rows of these train params: the corpus's, and their rule clauses (one set per count,
        so a search over `rule_clauses` trains each trial on its own count, not on the written one's)."""
        if t.rule_clauses not in augmented:
            augmented[t.rule_clauses] = (
                with_rule_clauses(*corpus_rows, words, t.rule_clauses, p.seed, Path(scratch.name))
                if t.rule_clauses
                else corpus_rows
            )
        return augmented[t.rule_clauses]

    train_split, soft = rows_of(p)
    if p.eval_rows and len(val_split) > p.eval_rows:
        rows = np.sort(np.random.default_rng(p.seed).choice(len(val_split), p.eval_rows, replace=False))
        val_split = subset(val_split, rows)
        print(f"train: evaluations score a seeded sample of {p.eval_rows} validation rows (classifier.train.eval_rows)")

    def build(t: TrainParams) -> tuple[torch.nn.Module, Classification]:
        """The network and objective of one set of train params (the run's, or a search trial's)."""
        train_split, soft = rows_of(t)
        spec = ClassifierSpec.of(t, len(words.vocab), matrix.shape[1], len(words.labels))
        network = build_model(spec, matrix, freeze=t.freeze_embeddings)
        if t.lexical != "none" and t.lexical_init == "nb":
            lexical.init_nb(network, train_split, t.lexical_scale)
        model = wrap(network.to(device), device, dist)
        objective = Classification(
            train_split,
            val_split,
            t.batch_size,
            classes,
            t.loss_weights,
            device,
            t.batch_tokens,
            soft,
            params.classifier.distill.alpha,
        )
        return model, objective

    s = params.classifier.search
    searching = s.trials > 1 and bool(s.space)
    if searching and dist.enabled:
        print("train: classifier.search runs on one process; under torchrun the params as written train", flush=True)
        searching = False
    model, objective = (None, None) if searching else build(p)

    def search(on_eval) -> SearchOutcome:
        _, first = build(p)
        return run_search(
            p,
            s.space,
            s.trials,
            build,
            device,
            s.seed,
            s.prune_after,
            s.max_minutes,
            steps_per_pass(first, p.seed),
            on_eval,
        )

    job = TrainJob(
        loop=p,
        tracking=params.tracking,
        experiment=params.classifier.experiment,
        logged_params=logged_params(params),
        inputs={"training": train_path, "validation": val_path},
        lineage=[train_path, val_path, VOCAB, EMBEDDINGS, SOFT_TARGETS],
        # the validation rows themselves (not their ids, which change with the vocabulary): the registry
        # compares a model only with a champion validated on the same rows
        tags={
            tracking.VALIDATION_TAG: tracking.rows_md5(prepared("val"), ("text", "label")),
            **({"teacher.run_id": teacher["run_id"]} if teacher.get("enabled") else {}),
        },
        checkpoint=CHECKPOINT,
        report=TRAIN_REPORT,
        history=HISTORY,
        save_model=lambda bare: Predictor(bare, words.vocab, words.labels, words.tokenizer, device).save(MODEL),
        search=search if searching else None,
        search_space=dict(s.space),
    )
    padding = round(padding_fraction(train_split, p.batch_size, True, p.seed, p.batch_tokens), 4)
    return run_training(job, model, objective, device, dist, fresh, {"padding_fraction": padding})
