"""The evaluate stage's TF-IDF reference, fitted in a process of its own (`baseline.py` runs there).

This module imports neither torch nor scikit-learn: the stage script fits the reference
first (`prefit`), while its own process holds only its params, and imports the network's
code after. The stage's peak memory is then the larger of the two processes, not their sum
(torch, mlflow and the model held 0.5 GB beside the reference's process before). The
result is kept for the rest of the process, so the evaluate code reads it without a
second fit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from sentipipe.data.paths import prepared
from sentipipe.io import read_json
from sentipipe.tasks.classifier.params import ClassifierConfig, EvaluateParams

METRICS = ("accuracy", "macro_recall", "macro_f1")
_FITTED: dict[str, tuple] = {}  # a request (JSON) -> its result, in this process


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
    reference's arrays (blend.LinearReference.read takes them: a served blend computes with them)."""
    files = {s: Path(prepared(s)).resolve() for s in ("train", "val", "test")}
    job = {
        **{s: str(path) for s, path in files.items()},
        "metric": metric,
        "stream_chars": e.baseline_stream_chars,
        "sample_chars": e.baseline_sample_chars,
    }
    # the same files, unchanged since (a bench may rewrite the splits and evaluate again in one process)
    stamps = {s: [path.stat().st_size, path.stat().st_mtime_ns] for s, path in files.items()}
    key = json.dumps([job, stamps], sort_keys=True)
    if key not in _FITTED:
        with tempfile.TemporaryDirectory(prefix="sentipipe-baseline-") as tmp:
            request = json.dumps({**job, "out": tmp})
            subprocess.run([sys.executable, "-m", "sentipipe.tasks.classifier.baseline", request], check=True)
            with np.load(Path(tmp) / "probabilities.npz") as probabilities:
                probs = {s: probabilities[s] for s in ("val", "test")}
            _FITTED[key] = read_json(Path(tmp) / "summary.json"), probs, _arrays(Path(tmp) / "reference.npz")
    return _FITTED[key]


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as bundle:
        return {k: bundle[k] for k in bundle.files}


def prefit(params: ClassifierConfig) -> None:
    """What the evaluate stage will ask `scores` for, fitted now (nothing when the baseline is off)."""
    e = params.classifier.evaluate
    if e.baseline:
        scores(e, tuning_metric(params.classifier.register.metric))
