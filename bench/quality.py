"""Test accuracy of the default params against linear baselines on the same split.

Runs the pipeline's stages (params.yaml, or --params) in a temporary workspace
with a throw-away MLflow store, then fits TF-IDF word+char logistic regression
and NB-weighted logistic regression on the very same train/val/test split, and
prints each accuracy with its ratio to the best baseline.

    python bench/quality.py [--params params.yaml] [--set classifier.train.epochs=4 ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from sentipipe.data.paths import prepared
from sentipipe.io import read_json
from sentipipe.tasks.classifier import paths
from sentipipe.tasks.classifier.evaluation import tfidf_baseline
from sentipipe.tasks.classifier.params import ClassifierConfig

from common import load, run_stages


def nb_lr(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """Wang & Manning's NB-weighted features (binary uni+bigrams, log-count ratio)."""
    vec = CountVectorizer(ngram_range=(1, 2), binary=True)
    x_train, x_test = vec.fit_transform(train.text), vec.transform(test.text)
    y = (train.label == sorted(train.label.unique())[-1]).to_numpy()
    p = np.asarray(x_train[y].sum(0)).ravel() + 1.0
    q = np.asarray(x_train[~y].sum(0)).ravel() + 1.0
    r = np.log((p / p.sum()) / (q / q.sum()))
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(x_train.multiply(r).tocsr(), y)
    return float((clf.predict(x_test.multiply(r).tocsr()) == (test.label == sorted(train.label.unique())[-1])).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--set", action="append", default=[], help="section.key=value override")
    args = ap.parse_args()
    params = load(args.params, args.set, ClassifierConfig)
    with tempfile.TemporaryDirectory(prefix="sentipipe-bench-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.chdir(tmp)
        start = time.perf_counter()
        stages = ("ingest", "prepare", "tokenize", "embed", "train", "evaluate")
        run_stages(args.params, args.set, "classifier", stages)
        rnn_seconds = time.perf_counter() - start
        metrics = read_json(paths.METRICS)
        train = pd.read_parquet(prepared("train"))
        test = pd.read_parquet(prepared("test"))
        start = time.perf_counter()
        baselines = {
            "tfidf_word_char_lr": tfidf_baseline(train.text, train.label, test.text, test.label),
            "nb_lr": nb_lr(train, test),
        }
        base_seconds = time.perf_counter() - start
    rnn = metrics["test"]["accuracy"]
    best = max(baselines.values())
    print(f"\nsplit: train {len(train)}, test {len(test)}; corpora {params.data.corpora}, seed {params.data.seed}")
    print(f"{'model':<28}{'test accuracy':>14}{'vs best baseline':>18}")
    for name, acc in baselines.items():
        print(f"{name:<28}{acc:>14.4f}{acc / best:>18.3f}")
    c = params.classifier
    label = f"{c.train.cell}{' bi' if c.train.bidirectional else ''} ({c.embed.source})"
    print(f"{label:<28}{rnn:>14.4f}{rnn / best:>18.3f}")
    print(f"val accuracy {metrics['val']['accuracy']:.4f}; pipeline {rnn_seconds:.0f}s, baselines {base_seconds:.0f}s")
    return 0 if rnn > best else 1


if __name__ == "__main__":
    sys.exit(main())
