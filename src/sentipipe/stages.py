"""One function per DVC stage: read the declared deps, write the declared outs.

pipeline/*.py only call these, so every stage can be run and tested without
DVC. Paths are relative to the workspace (DVC runs stage commands there).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sentipipe.config import Params, load_params
from sentipipe.data.split import SPLITS
from sentipipe.errors import DataError, SentipipeError
from sentipipe.io import atomic_write, read_json, write_json

RAW = Path("data/raw/corpus.parquet")
PREPARED_DIR = Path("data/prepared")
TOKENS_DIR = Path("data/tokens")
VOCAB = TOKENS_DIR / "vocab.json"
EMBEDDINGS = Path("data/embeddings/matrix.npy")
MODEL = Path("models/model.pt")
CHECKPOINT = Path("models/checkpoint.pt")
REPORTS = Path("reports")
DATA_REPORT = REPORTS / "data.json"
INGEST_REPORT = REPORTS / "ingest.json"
TOKENS_REPORT = REPORTS / "tokens.json"
EMBED_REPORT = REPORTS / "embeddings.json"
TRAIN_REPORT = REPORTS / "train.json"
HISTORY = REPORTS / "plots" / "history.csv"
CONFUSION = REPORTS / "plots" / "confusion.csv"
ROC = REPORTS / "plots" / "roc.csv"
PR = REPORTS / "plots" / "pr.csv"
CALIBRATION = REPORTS / "plots" / "calibration.csv"
ERRORS = REPORTS / "errors.csv"
METRICS = REPORTS / "metrics.json"
REGISTRATION = REPORTS / "registration.json"


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _write_csv(path: Path, rows: list[dict]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def _write_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a handle: np.save would append .npy to the temp name
            np.save(fh, array, allow_pickle=False)

    atomic_write(path, write)


def _require(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SentipipeError(f"missing input(s) {missing}: run the earlier stages first (dvc repro)")


# ---------------------------------------------------------------- ingest / prepare


def ingest(params: Params) -> dict:
    from sentipipe.data.corpus import ingest as read_corpus

    table, report = read_corpus(params.data)
    _write_parquet(RAW, table)
    write_json(INGEST_REPORT, report)
    print(f"ingest: {report['rows_read']} rows read, {report['rows_kept']} kept, dropped {report['dropped']}")
    return report


def prepare(params: Params) -> dict:
    from sentipipe.data.split import prepare as split_corpus

    _require(RAW)
    parts, report = split_corpus(pd.read_parquet(RAW), params.data)
    for name, part in parts.items():
        _write_parquet(PREPARED_DIR / f"{name}.parquet", part)
    write_json(DATA_REPORT, report)
    sizes = ", ".join(f"{k} {v['rows']}" for k, v in report["splits"].items())
    print(f"prepare: {report['rows_in']} rows in, {report['rows_kept']} kept ({sizes}); dropped {report['dropped']}")
    return report


# ---------------------------------------------------------------- tokenize / embed


def tokenize(params: Params) -> dict:
    from sentipipe.text.encoding import encode, save_split
    from sentipipe.text.tokenizer import TokenizerSettings
    from sentipipe.text.tokenizer import tokenize as spacy_tokenize
    from sentipipe.text.vocab import UNK_ID, build_vocab

    p = params.tokenize
    _require(*(PREPARED_DIR / f"{s}.parquet" for s in SPLITS))
    settings = TokenizerSettings(lowercase=p.lowercase, max_length=p.max_length, special_tokens=p.special_tokens)
    untruncated = dataclasses.replace(settings, max_length=2**31)
    frames = {s: pd.read_parquet(PREPARED_DIR / f"{s}.parquet") for s in SPLITS}
    full = {
        s: list(spacy_tokenize(f["text"].tolist(), untruncated, p.batch_size, p.n_process)) for s, f in frames.items()
    }
    truncated = {s: sum(len(t) > p.max_length for t in toks) for s, toks in full.items()}
    tokens = {s: [t[: p.max_length] for t in toks] for s, toks in full.items()}
    vocab, counts = build_vocab(tokens["train"], p.min_freq, p.max_size)
    labels = sorted(frames["train"]["label"].unique().tolist())
    label_index = {label: i for i, label in enumerate(labels)}
    stats = {}
    for split in SPLITS:
        y = frames[split]["label"].map(label_index)
        if y.isna().any():
            raise DataError(
                f"split {split!r} has labels unseen in train: {sorted(set(frames[split]['label']) - set(labels))}"
            )
        encoded = encode(tokens[split], y.to_numpy(), vocab)
        save_split(TOKENS_DIR / f"{split}.npz", encoded)
        lengths = encoded.lengths
        stats[split] = {
            "sentences": len(encoded),
            "tokens": int(lengths.sum()),
            "unknown_rate": round(float((encoded.ids == UNK_ID).mean()) if len(encoded.ids) else 0.0, 4),
            "length_p50_p90_p99_max": [int(x) for x in np.percentile(lengths, [50, 90, 99, 100])],
            "truncated_to_max_length": int(truncated[split]),
        }
    write_json(
        VOCAB,
        {
            "tokenizer": settings.to_dict(),
            "labels": labels,
            "tokens": vocab.tokens,
            "counts": [int(counts.get(t, 0)) for t in vocab.tokens],
        },
    )
    write_json(TOKENS_REPORT, {"vocabulary": len(vocab), "labels": labels, "splits": stats})
    print(
        f"tokenize: vocabulary {len(vocab)} tokens, labels {labels}, "
        f"train unknown rate {stats['train']['unknown_rate']}"
    )
    return stats


def load_vocab():
    from sentipipe.text.tokenizer import TokenizerSettings
    from sentipipe.text.vocab import Vocab

    data = read_json(VOCAB)
    return (
        Vocab(data["tokens"]),
        data["labels"],
        TokenizerSettings(**data["tokenizer"]),
        dict(zip(data["tokens"], data["counts"], strict=False)),
    )


def embed(params: Params) -> dict:
    from sentipipe.embeddings import build_matrix

    train_texts = PREPARED_DIR / "train.parquet"
    _require(VOCAB, train_texts)
    vocab, _, settings, counts = load_vocab()
    start = time.perf_counter()
    e = params.embed
    needs_texts = e.source in ("word2vec", "fasttext") or (e.source == "minilm" and e.mode == "context")
    texts = pd.read_parquet(train_texts)["text"].tolist() if needs_texts else []
    matrix, report = build_matrix(vocab, counts, params.embed, texts, settings)
    report["seconds"] = round(time.perf_counter() - start, 2)

    _write_npy(EMBEDDINGS, matrix)
    write_json(EMBED_REPORT, report)
    print(f"embed: {matrix.shape[0]} x {matrix.shape[1]} ({report})")
    return report


# ---------------------------------------------------------------- train / evaluate / register


def _fingerprint(section: dict, data_tags: dict[str, str]) -> str:
    """What a checkpoint must match to be resumed: the train params and the data."""
    import hashlib

    blob = json.dumps({"train": section, "data": data_tags}, sort_keys=True)
    return hashlib.md5(blob.encode()).hexdigest()


def _load_checkpoint(path: Path, fingerprint: str, fresh: bool) -> dict | None:
    import torch

    if fresh or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint or state.get("complete"):
        return None  # other params or data, or a finished run: start afresh
    return state


def _save_checkpoint(path: Path, state: dict) -> None:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def _log_datasets(paths: dict[str, Path], tags: dict[str, str]) -> None:
    import warnings

    import mlflow
    import mlflow.data

    from sentipipe.text.encoding import load_split

    for context, path in paths.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.suffix == ".npy":  # a generator stream
                arrays, targets = {"ids": np.load(path)}, None
            else:
                split = load_split(path)
                arrays, targets = {"ids": split.ids, "offsets": split.offsets}, split.labels
            dataset = mlflow.data.from_numpy(
                arrays,
                targets=targets,
                source=str(path.resolve()),
                name=path.stem,
                digest=tags[f"data.md5.{path.as_posix()}"][:8],
            )
        mlflow.log_input(dataset, context=context)


@dataclasses.dataclass
class _TrainJob:
    """What differs between the tasks' train stages; `_run_training` does the rest."""

    loop: object  # LoopParams
    tracking: object  # TrackingParams
    logged_params: dict[str, str]
    inputs: dict[str, Path]  # MLflow dataset context -> file, e.g. {"training": ..., "validation": ...}
    lineage: list[Path]  # every input whose md5 goes into the tags
    checkpoint: Path
    report: Path
    history: Path
    save_model: object  # Callable[[nn.Module], None]: write the best weights as the task's model file


def _run_training(job: _TrainJob, model, objective, device, dist, fresh: bool, extra_summary=None) -> dict:
    """Fit in one MLflow run, resuming a matching checkpoint; rank 0 alone logs and writes."""
    import mlflow

    from sentipipe import tracking
    from sentipipe.training.distributed import barrier, shutdown
    from sentipipe.training.loop import EpochMetrics, device_name, fit

    p = job.loop
    tags = tracking.lineage_tags(job.lineage, device_name(device))
    tags["distributed.world_size"] = str(dist.world_size)
    fingerprint = _fingerprint(p.model_dump(), {k: v for k, v in tags.items() if k.startswith("data.md5.")})
    resume = _load_checkpoint(job.checkpoint, fingerprint, fresh)
    history_rows: list[dict] = []

    def on_epoch(m) -> None:
        history_rows.append(m.row())
        # Per-epoch curves get their own names: the unprefixed val_* metrics are
        # the best epoch's (logged by evaluate), never the last epoch's.
        scalars = {f"epoch_{k}": v for k, v in m.scalars().items()}
        scalars.update({f"grad_norm.{k}": v for k, v in m.layer_grad_norms.items()})
        mlflow.log_metrics(scalars, step=m.epoch)
        extra = "".join(f" {k.removeprefix('val_')} {v:.4f}" for k, v in m.extra.items())
        print(
            f"epoch {m.epoch}/{p.epochs}: train loss {m.train_loss:.4f} acc {m.train_accuracy:.4f} | "
            f"val loss {m.val_loss:.4f} acc {m.val_accuracy:.4f}{extra} | grad norm {m.grad_norm:.3f} | "
            f"{m.seconds:.1f}s",
            flush=True,
        )

    latest: dict = dict(resume or {})

    def checkpoint(state: dict) -> None:
        latest.update(state, fingerprint=fingerprint, run_id=run_id, complete=False)
        _save_checkpoint(job.checkpoint, latest)

    if not dist.is_main:  # other ranks train their shard and write nothing
        fit(model, objective, p, device, resume=resume, dist=dist)
        barrier(dist)
        shutdown(dist)
        return {}

    experiment_id = tracking.configure(job.tracking)
    run_id = resume["run_id"] if resume else None
    if run_id and not tracking.run_exists(run_id):
        resume, run_id = None, None  # the store changed under the checkpoint: train afresh
    with mlflow.start_run(run_id=run_id, experiment_id=None if run_id else experiment_id) as run:
        run_id = run.info.run_id
        if resume is None:
            mlflow.set_tags(tags)
            mlflow.log_params(job.logged_params)
            _log_datasets(job.inputs, tags)
        else:
            history_rows.extend(EpochMetrics(**h).row() for h in resume["history"])
            print(f"train: resuming run {run_id} after epoch {resume['epoch']} from {job.checkpoint}", flush=True)
        result = fit(model, objective, p, device, on_epoch, resume, checkpoint, dist)
        bare = getattr(model, "module", model)
        bare.load_state_dict(result.best_state)
        job.save_model(bare)
        summary = {
            "best_epoch": result.best.epoch,
            "best_val_accuracy": result.best.val_accuracy,
            "best_val_loss": result.best.val_loss,
            **{f"best_{k}": v for k, v in result.best.extra.items()},
            "epochs_run": len(result.history),
            "stopped_early": result.stopped_early,
            **(extra_summary or {}),
            "seconds_per_epoch": round(float(np.mean([h.seconds for h in result.history])), 2),
        }
        mlflow.log_metrics({k: float(v) for k, v in summary.items()})
        report = {"run_id": run_id, "experiment_id": run.info.experiment_id, "device": tags["device"], **summary}
    _save_checkpoint(job.checkpoint, {**latest, "complete": True})  # a forced rerun starts afresh, not from the end
    _write_csv(job.history, history_rows)
    write_json(job.report, report)
    barrier(dist)
    shutdown(dist)
    return report


def _device_and_dist(p):
    import torch

    from sentipipe.training.distributed import init_from_env
    from sentipipe.training.loop import resolve_device, seed_everything

    device = resolve_device(p.device)
    dist = init_from_env(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    if p.threads:
        torch.set_num_threads(p.threads)
    seed_everything(p.seed)
    return device, dist


def _wrap(model, device, dist):
    from torch.nn.parallel import DistributedDataParallel

    if dist.enabled:
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def train(params: Params, fresh: bool = False) -> dict:
    """Fit the classifier in one MLflow run; resume from models/checkpoint.pt when it matches.

    Under torchrun every rank trains on its shard of each epoch; rank 0 alone
    talks to MLflow and writes outputs.
    """
    import torch

    from sentipipe import tracking
    from sentipipe.models.rnn import ModelSpec, build_model
    from sentipipe.predictor import Predictor
    from sentipipe.text.encoding import load_split
    from sentipipe.training.batching import padding_fraction
    from sentipipe.training.objectives import Classification

    p = params.train
    train_path, val_path = TOKENS_DIR / "train.npz", TOKENS_DIR / "val.npz"
    _require(train_path, val_path, VOCAB, EMBEDDINGS)
    device, dist = _device_and_dist(p)
    vocab, labels, settings, _ = load_vocab()
    matrix = torch.from_numpy(np.load(EMBEDDINGS))
    spec = ModelSpec(
        vocab_size=len(vocab),
        embed_dim=int(matrix.shape[1]),
        num_classes=len(labels),
        cell=p.cell,
        hidden_size=p.hidden_size,
        num_layers=p.num_layers,
        bidirectional=p.bidirectional,
        dropout=p.dropout,
        embed_dropout=p.embed_dropout,
        pooling=p.pooling,
    )
    model = _wrap(build_model(spec, matrix, freeze=p.freeze_embeddings).to(device), device, dist)
    train_split, val_split = load_split(train_path), load_split(val_path)
    objective = Classification(train_split, val_split, p.batch_size, len(labels), p.class_weights, device)
    job = _TrainJob(
        loop=p,
        tracking=params.tracking,
        logged_params=tracking.flatten(params),
        inputs={"training": train_path, "validation": val_path},
        lineage=[train_path, val_path, VOCAB, EMBEDDINGS],
        checkpoint=CHECKPOINT,
        report=TRAIN_REPORT,
        history=HISTORY,
        save_model=lambda bare: Predictor(bare, vocab, labels, settings, device).save(MODEL),
    )
    padding = round(padding_fraction(train_split, p.batch_size, shuffle=True, seed=p.seed), 4)
    return _run_training(job, model, objective, device, dist, fresh, {"padding_fraction": padding})


def _attach_run(tracking_params, report: Path = TRAIN_REPORT):
    """Reopen the MLflow run the train stage recorded in its report."""
    import mlflow

    from sentipipe import tracking

    _require(report)
    tracking.configure(tracking_params)
    return mlflow.start_run(run_id=read_json(report)["run_id"])


def evaluate(params: Params) -> dict:
    """Score val and test, per source too; write curves, confident errors and the TF-IDF reference."""
    import mlflow

    from sentipipe import evaluation as ev
    from sentipipe.predictor import Predictor
    from sentipipe.text.encoding import load_split

    _require(MODEL, TOKENS_DIR / "test.npz", TOKENS_DIR / "val.npz", *(PREPARED_DIR / f"{s}.parquet" for s in SPLITS))
    predictor = Predictor.load(MODEL)
    classes = predictor.labels
    metrics: dict = {}
    for split in ("val", "test"):
        data = load_split(TOKENS_DIR / f"{split}.npz")
        probs = predictor.predict_encoded(data, params.evaluate.batch_size)
        metrics[split] = ev.classification_metrics(data.labels, probs, classes)
    test_frame = pd.read_parquet(PREPARED_DIR / "test.parquet")
    metrics["test_by_source"] = ev.grouped_metrics(data.labels, probs, classes, test_frame["source"].astype(str))
    if params.evaluate.baseline:
        train_frame = pd.read_parquet(PREPARED_DIR / "train.parquet")
        metrics["baseline"] = {
            "tfidf_lr_test_accuracy": ev.tfidf_baseline(
                train_frame["text"], train_frame["label"], test_frame["text"], test_frame["label"]
            )
        }
    curves = ev.curve_rows(data.labels, probs, classes)
    _write_csv(CONFUSION, ev.confusion_rows(data.labels, probs, classes))
    for path, rows in ((ROC, curves["roc"]), (PR, curves["pr"]), (CALIBRATION, curves["calibration"])):
        if rows:
            _write_csv(path, rows)
        else:  # a test split with one class has no curve; DVC still needs the declared file
            atomic_write(path, lambda tmp: tmp.write_text("\n"))
    errors = ev.confident_errors(test_frame["text"].tolist(), data.labels, probs, classes)
    atomic_write(ERRORS, lambda tmp: errors.to_csv(tmp, index=False))
    write_json(METRICS, metrics)
    with _attach_run(params.tracking):
        flat = {f"{split}_{k}": v for split in ("val", "test") for k, v in metrics[split].items()}
        for source, values in metrics["test_by_source"].items():
            flat.update({f"test_{source}_{k}": v for k, v in values.items() if k in ("accuracy", "macro_f1")})
        if "baseline" in metrics:
            flat["baseline_tfidf_lr_test_accuracy"] = metrics["baseline"]["tfidf_lr_test_accuracy"]
        mlflow.log_metrics({k: float(v) for k, v in flat.items()})
        mlflow.log_artifact(str(METRICS))
        mlflow.log_artifact(str(ERRORS), artifact_path="errors")
        with tempfile.TemporaryDirectory() as tmp:
            for path in ev.save_figures(curves, ev.confusion(data.labels, probs, classes), classes, tmp):
                mlflow.log_artifact(str(path), artifact_path="plots")
    headline = ("accuracy", "macro_f1", "roc_auc", "log_loss", "ece")
    print(
        "evaluate: "
        + "; ".join(f"{s} " + ", ".join(f"{k} {metrics[s][k]:.4f}" for k in headline) for s in ("val", "test"))
    )
    if "baseline" in metrics:
        reference = metrics["baseline"]["tfidf_lr_test_accuracy"]
        print(f"evaluate: TF-IDF logistic regression on the same test split: {reference:.4f}")
    return metrics


def register(params: Params) -> dict:
    from sentipipe import registry, serving

    _require(MODEL, METRICS, TRAIN_REPORT)
    train_report, metrics = read_json(TRAIN_REPORT), read_json(METRICS)
    labels = read_json(VOCAB)["labels"]
    with _attach_run(params.tracking) as run:
        info = serving.log_model(MODEL, labels)
        decision = registry.register(
            info.model_uri, params.register, run.info.run_id, metrics, train_report["device"], run.data.tags
        )
    write_json(REGISTRATION, decision)
    print(
        f"register: {decision['name']} version {decision['version']}; "
        f"champion {'moved' if decision['promoted'] else 'kept'}: {decision['reason']}"
    )
    return decision


# ---------------------------------------------------------------- the generator task
#
# A second task on the same machinery: data/prepared (or a file of the user's)
# -> unit streams -> an RNN language model trained by the same loop with
# truncated BPTT -> bits per character against a Kneser-Ney n-gram -> its own
# registered model, served by the same command.

LM_DIR = Path("data/lm")
LM_VOCAB = LM_DIR / "vocab.json"
LM_MODEL = Path("models/generator.pt")
LM_CHECKPOINT = Path("models/generator-checkpoint.pt")
LM_TOKENS_REPORT = REPORTS / "lm_tokens.json"
LM_TRAIN_REPORT = REPORTS / "lm_train.json"
LM_HISTORY = REPORTS / "plots" / "lm_history.csv"
LM_METRICS = REPORTS / "lm_metrics.json"
LM_SAMPLES = REPORTS / "lm_samples.json"
LM_REGISTRATION = REPORTS / "lm_registration.json"


def _lm_tracking(params: Params):
    from sentipipe.config import TrackingParams

    return TrackingParams(experiment=params.generator.experiment, uri=params.tracking.uri)


def _lm_documents(params: Params) -> dict[str, list[str]]:
    from sentipipe.generation import read_documents, split_documents

    d = params.generator.data
    if d.source == "prepared":
        _require(*(PREPARED_DIR / f"{s}.parquet" for s in SPLITS))
        return {s: pd.read_parquet(PREPARED_DIR / f"{s}.parquet")["text"].astype(str).tolist() for s in SPLITS}
    docs = read_documents(Path(d.path), d.text_column)
    return split_documents(docs, d.val_size, d.test_size, d.seed)


def lm_tokenize(params: Params) -> dict:
    """Texts -> units -> one id stream per split; the vocabulary from the training split."""
    from sentipipe.generation import UnitSettings, build_vocab, encode_stream, to_units
    from sentipipe.text.vocab import UNK_ID

    t = params.generator.tokenize
    settings = UnitSettings(unit=t.unit, lowercase=t.lowercase)
    docs = _lm_documents(params)
    units = {s: to_units(texts, settings) for s, texts in docs.items()}
    vocab = build_vocab(units["train"], t.min_freq, t.max_size)
    stats = {}
    for split in SPLITS:
        stream = encode_stream(units[split], vocab)
        if len(stream) < 3:
            raise DataError(f"generator: the {split} split has too little text ({len(stream)} units)")
        _write_npy(LM_DIR / f"{split}.npy", stream)
        chars = sum(len(text) + 1 for text in docs[split])  # + 1: the end of each document, like a newline
        stats[split] = {
            "documents": len(docs[split]),
            "units": int(len(stream)),
            "characters": int(chars),
            "chars_per_unit": round(chars / len(stream), 6),
            "unknown_rate": round(float((stream == UNK_ID).mean()), 5),
        }
    write_json(LM_VOCAB, {"units": settings.to_dict(), "tokens": vocab.tokens, "splits": stats})
    write_json(LM_TOKENS_REPORT, {"unit": t.unit, "vocabulary": len(vocab), "splits": stats})
    print(
        f"lm_tokenize: {t.unit} units, vocabulary {len(vocab)}, train {stats['train']['units']} units, "
        f"val unknown rate {stats['val']['unknown_rate']}"
    )
    return stats


def _lm_vocab():
    from sentipipe.generation import UnitSettings
    from sentipipe.text.vocab import Vocab

    data = read_json(LM_VOCAB)
    return Vocab(data["tokens"]), UnitSettings(**data["units"]), data["splits"]


def lm_train(params: Params, fresh: bool = False) -> dict:
    """Fit the language model with truncated BPTT, through the same loop and tracked run as the classifier."""
    from sentipipe import tracking
    from sentipipe.generation import Generator
    from sentipipe.models.lm import LMSpec, RNNLanguageModel
    from sentipipe.text.vocab import PAD_ID
    from sentipipe.training.objectives import LanguageModel

    p = params.generator.train
    train_path, val_path = LM_DIR / "train.npy", LM_DIR / "val.npy"
    _require(train_path, val_path, LM_VOCAB)
    device, dist = _device_and_dist(p)
    vocab, settings, stats = _lm_vocab()
    spec = LMSpec(
        vocab_size=len(vocab),
        embed_dim=p.embed_dim,
        cell=p.cell,
        hidden_size=p.hidden_size,
        num_layers=p.num_layers,
        dropout=p.dropout,
        embed_dropout=p.embed_dropout,
    )
    model = _wrap(RNNLanguageModel(spec).to(device), device, dist)
    train_stream, val_stream = np.load(train_path), np.load(val_path)
    lanes = p.batch_size * dist.world_size
    if len(train_stream) < lanes * 2:
        raise DataError(f"generator: {len(train_stream)} training units cannot fill {lanes} lanes; lower batch_size")
    objective = LanguageModel(
        train_stream, val_stream, lanes, p.bptt, stats["val"]["chars_per_unit"], exclude=(PAD_ID,)
    )
    job = _TrainJob(
        loop=p,
        tracking=_lm_tracking(params),
        logged_params=tracking.flatten(params, ["generator"]),
        inputs={"training": train_path, "validation": val_path},
        lineage=[train_path, val_path, LM_VOCAB],
        checkpoint=LM_CHECKPOINT,
        report=LM_TRAIN_REPORT,
        history=LM_HISTORY,
        save_model=lambda bare: Generator(bare, vocab, settings, device).save(LM_MODEL),
    )
    parameters = sum(t.numel() for t in getattr(model, "module", model).parameters())
    return _run_training(job, model, objective, device, dist, fresh, {"parameters": parameters})


def lm_evaluate(params: Params) -> dict:
    """Val and test bits per character, the n-gram reference on the same split, and samples."""
    import mlflow

    from sentipipe.generation import EOS_ID, Generator
    from sentipipe.ngram import KneserNey, best_order
    from sentipipe.text.vocab import PAD_ID
    from sentipipe.training.objectives import stream_scores

    g = params.generator
    streams = {s: LM_DIR / f"{s}.npy" for s in SPLITS}
    _require(LM_MODEL, LM_VOCAB, *streams.values())
    generator = Generator.load(LM_MODEL)
    _, _, stats = _lm_vocab()
    loaded = {s: np.load(path).astype(np.int64) for s, path in streams.items()}
    metrics: dict = {}
    window = g.train.bptt * 4
    for split in ("val", "test"):
        cpu = stats[split]["chars_per_unit"]
        scores = stream_scores(generator.model, loaded[split], 16, window, generator.device, cpu, (PAD_ID,))
        metrics[split] = {k: round(v, 6) for k, v in scores.items()}
    if g.evaluate.baseline:
        ngram = KneserNey(len(generator.vocab), g.evaluate.ngram_max_order).fit(loaded["train"], EOS_ID)
        order, by_order = best_order(ngram, loaded["val"])
        val_cpu = stats["val"]["chars_per_unit"]
        metrics["baseline"] = {
            "kneser_ney_order": order,
            **{
                f"kneser_ney_{s}_bpc": round(ngram.bits_per_unit(loaded[s], order) / stats[s]["chars_per_unit"], 6)
                for s in ("val", "test")
            },
            "kneser_ney_val_bpc_by_order": {str(m): round(v / val_cpu, 6) for m, v in by_order.items()},
        }
    s = g.sample
    samples = []
    for temperature in g.evaluate.temperatures:
        for prompt in g.evaluate.prompts:
            text, _ = generator.generate(prompt, s.max_length, temperature, s.top_k, s.seed)
            samples.append({"prompt": prompt, "temperature": temperature, "seed": s.seed, "text": prompt + text})
    write_json(LM_METRICS, metrics)
    write_json(LM_SAMPLES, samples)
    with _attach_run(_lm_tracking(params), LM_TRAIN_REPORT):
        flat = {f"{split}_{k}": v for split in ("val", "test") for k, v in metrics[split].items()}
        baseline = metrics.get("baseline", {})
        flat.update({f"baseline_{k}": v for k, v in baseline.items() if not isinstance(v, dict)})
        mlflow.log_metrics({k: float(v) for k, v in flat.items()})
        mlflow.log_artifact(str(LM_METRICS))
        mlflow.log_artifact(str(LM_SAMPLES))
    print(
        f"lm_evaluate: val bpc {metrics['val']['bpc']:.4f} (perplexity {metrics['val']['perplexity']:.2f}), "
        f"test bpc {metrics['test']['bpc']:.4f}"
    )
    if "baseline" in metrics:
        b = metrics["baseline"]
        print(
            f"lm_evaluate: Kneser-Ney {b['kneser_ney_order']}-gram on the same split: "
            f"val bpc {b['kneser_ney_val_bpc']:.4f}, test bpc {b['kneser_ney_test_bpc']:.4f}"
        )
    for sample in samples:
        print(f"lm_evaluate: sample (temperature {sample['temperature']}): {sample['text']!r}")
    return metrics


def lm_register(params: Params) -> dict:
    from sentipipe import registry, serving

    _require(LM_MODEL, LM_METRICS, LM_TRAIN_REPORT)
    train_report, metrics = read_json(LM_TRAIN_REPORT), read_json(LM_METRICS)
    with _attach_run(_lm_tracking(params), LM_TRAIN_REPORT) as run:
        info = serving.log_generator(LM_MODEL, params.generator.sample)
        decision = registry.register(
            info.model_uri, params.generator.register, run.info.run_id, metrics, train_report["device"], run.data.tags
        )
    write_json(LM_REGISTRATION, decision)
    print(
        f"lm_register: {decision['name']} version {decision['version']}; "
        f"champion {'moved' if decision['promoted'] else 'kept'}: {decision['reason']}"
    )
    return decision


STAGES = {
    "ingest": ingest,
    "prepare": prepare,
    "tokenize": tokenize,
    "embed": embed,
    "train": train,
    "evaluate": evaluate,
    "register": register,
    "lm_tokenize": lm_tokenize,
    "lm_train": lm_train,
    "lm_evaluate": lm_evaluate,
    "lm_register": lm_register,
}


def main(stage: str, params_path: str = "params.yaml") -> int:
    """Entry point of pipeline/<stage>.py: a user error is one line on stderr and exit 1."""
    import sys

    try:
        STAGES[stage](load_params(params_path))
    except SentipipeError as exc:
        print(f"sentipipe {stage}: error: {exc}", file=sys.stderr)
        return 1
    return 0
