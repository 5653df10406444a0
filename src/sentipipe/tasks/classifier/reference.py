"""The evaluate stage's TF-IDF reference, fitted in a process of its own (`baseline.py` runs there).

This module imports neither torch nor scikit-learn: the stage script starts the reference's
fit first (`prefit`), while its own process holds only its params, and imports the network's
code after. On a corpus past `baseline_stream_chars` of training text it waits for the fit
before those imports, so the stage's peak memory is the larger of the two processes, not their
sum (torch, mlflow and the model hold 0.5 GB). A smaller corpus's fit (exact features, a
smaller process) runs while the network's code is imported: on the default corpus the stage
took 28.5 s so, against 36.5 s waiting first (docs/evidence.md#make-run-fixed-costs-2026-12-07).
The result is kept for the rest of the process, so the evaluate code reads it without a second fit.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sentipipe.data.paths import prepared
from sentipipe.io import read_json
from sentipipe.tasks.classifier.params import ClassifierConfig, EvaluateParams

METRICS = ("accuracy", "macro_recall", "macro_f1")
_FITTED: dict[str, tuple] = {}  # a request (JSON) -> its result, in this process
_RUNNING: dict[str, tuple[subprocess.Popen, tempfile.TemporaryDirectory]] = {}  # started by prefit, not waited for


def tuning_metric(register_metric: str) -> str:
    """The figure the baseline is tuned on: the registry's, when it is one of these; else accuracy."""
    key = register_metric.removeprefix("val_")
    return key if key in METRICS else "accuracy"


def scores(e: EvaluateParams, metric: str) -> tuple[dict, dict[str, np.ndarray]]:
    """`fitted`'s summary and probabilities."""
    return fitted(e, metric)[:2]


def fitted(e: EvaluateParams, metric: str) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The TF-IDF reference (baseline.reference: exact, or past `baseline_stream_chars` hashed features of a
    seeded sample of at most `baseline_sample_chars` characters read in batches), fitted and scored on val and
    test in a process of its own, so its features never share memory with the network's; what it chose (its
    classes too: the training labels sorted, as tokenize orders them), its probabilities, and the fitted
    reference's arrays (blend.LinearReference.read takes them: a served blend computes with them). A fit that
    `prefit` started is waited for here."""
    key, job = _request(e, metric)
    if key not in _FITTED:
        if key not in _RUNNING:
            _start(key, job)
        process, tmp = _RUNNING.pop(key)
        with tmp:
            if code := process.wait():
                raise subprocess.CalledProcessError(code, process.args)
            with np.load(Path(tmp.name) / "probabilities.npz") as probabilities:
                probs = {s: probabilities[s] for s in ("val", "test")}
            _FITTED[key] = read_json(Path(tmp.name) / "summary.json"), probs, _arrays(Path(tmp.name) / "reference.npz")
    return _FITTED[key]


def _request(e: EvaluateParams, metric: str) -> tuple[str, dict]:
    files = {s: Path(prepared(s)).resolve() for s in ("train", "val", "test")}
    job = {
        **{s: str(path) for s, path in files.items()},
        "metric": metric,
        "stream_chars": e.baseline_stream_chars,
        "sample_chars": e.baseline_sample_chars,
    }
    # the same files, unchanged since (a bench may rewrite the splits and evaluate again in one process)
    stamps = {s: [path.stat().st_size, path.stat().st_mtime_ns] for s, path in files.items()}
    return json.dumps([job, stamps], sort_keys=True), job


def _start(key: str, job: dict) -> None:
    tmp = tempfile.TemporaryDirectory(prefix="sentipipe-baseline-")
    request = json.dumps({**job, "out": tmp.name})
    _RUNNING[key] = subprocess.Popen([sys.executable, "-m", "sentipipe.tasks.classifier.baseline", request]), tmp


@atexit.register
def _stop_running() -> None:
    """A fit started and never waited for (the stage failed first) ends with this process."""
    for process, tmp in _RUNNING.values():
        process.kill()
        process.wait()
        tmp.cleanup()
    _RUNNING.clear()


def exact_and_small(train: Path, stream_chars: int) -> bool:
    """Whether the reference fits on exact features from at most `stream_chars` of training text, judged from the
    Parquet file's metadata without reading it: its text column's uncompressed bytes, never fewer than its
    characters."""
    meta = pq.ParquetFile(train).metadata
    column = meta.schema.names.index("text")
    size = sum(meta.row_group(g).column(column).total_uncompressed_size for g in range(meta.num_row_groups))
    return size <= stream_chars


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as bundle:
        return {k: bundle[k] for k in bundle.files}


def prefit(params: ClassifierConfig) -> None:
    """What the evaluate stage will ask `fitted` for, fitted now (nothing when the baseline is off). A small
    corpus's fit (exact features, at most `baseline_stream_chars` of training text) is only started: it runs
    while this process imports the network's code (about 0.5 GB), and `fitted` waits for it; a larger one is
    waited for here, so the stage's peak stays the larger of the two processes, not their sum."""
    e = params.classifier.evaluate
    if not e.baseline:
        return
    metric = tuning_metric(params.classifier.register.metric)
    key, job = _request(e, metric)
    if exact_and_small(Path(job["train"]), e.baseline_stream_chars):
        if key not in _FITTED and key not in _RUNNING:
            _start(key, job)
    else:
        fitted(e, metric)
