"""Which parts of a long text the teacher reads: the head against a quarter from the start and the rest from the end.

On a workspace whose prepare stage ran (e.g. the IMDB one `bench/public.py --keep DIR` leaves), fine-tunes the
teacher (MiniLM-L6 with params.yaml's classifier.distill, by the stage's fine-tuning code) for one epoch on a
seeded sample of the training split, once per policy with the same seed, and prints each one's accuracy on the
validation split: the choice `classifier.tokenize.truncation` makes for the teacher is judged on validation data only.

    python bench/teacher_truncation.py DIR/imdb/default [--train 4000] [--policies head head+tail] \
        [--set classifier.distill.KEY=VALUE]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer

from sentipipe.tasks.classifier import encoders
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.soft_targets import Pieces, encoded
from sentipipe.tasks.classifier.teacher_model import fine_tune

from common import load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workspace", type=Path, help="a workspace whose data/prepared/{train,val}.parquet exist")
    ap.add_argument("--train", type=int, default=4000, help="training texts sampled (seed 0)")
    ap.add_argument("--policies", nargs="+", default=["head", "head+tail"])
    ap.add_argument("--params", default="params.yaml", help="the distill params (one epoch here); --set to change")
    ap.add_argument("--set", action="append", default=[], help="section.key=value override")
    args = ap.parse_args()
    prepared = args.workspace / "data" / "prepared"
    train = pd.read_parquet(prepared / "train.parquet").sample(args.train, random_state=0)
    val = pd.read_parquet(prepared / "val.parquet")
    d = load(args.params, args.set, ClassifierConfig).classifier.distill.model_copy(update={"teacher_epochs": 1})
    pieces_of = AutoTokenizer.from_pretrained(encoders.resolve("minilm").path, local_files_only=True)
    labels = sorted(set(train.label))
    y = {"train": train.label.map(labels.index).to_numpy(), "val": val.label.map(labels.index).to_numpy()}
    y["test"] = y["val"][:8]  # fine_tune scores a test split every epoch: a token one, unused here
    accuracy = {}
    for policy in args.policies:
        torch.manual_seed(d.seed)
        split = {"train": train, "val": val, "test": val.iloc[:8]}
        pieces = {
            s: Pieces.of([encoded(pieces_of, d.teacher_max_length, f.text.astype(str).tolist(), policy)])
            for s, f in split.items()
        }
        start = time.perf_counter()
        _, history = fine_tune(
            pieces, y, d, pieces_of.pad_token_id, torch.device("cpu"), encoders.resolve("minilm").path
        )
        accuracy[policy] = history[-1]["val_accuracy"]
        print(
            f"{policy}: val accuracy {accuracy[policy]:.4f} of {len(val)} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    first, *rest = args.policies
    for policy in rest:
        print(f"{policy} against {first}: {100 * (accuracy[policy] - accuracy[first]):+.2f} val points")


if __name__ == "__main__":
    main()
