"""What the TF-IDF baseline's bounded form costs: exact, hashed, and hashed on the evaluate stage's sample.

Past `classifier.evaluate.baseline_stream_chars` characters of training text the
evaluate stage fits the baseline on hashed features of a seeded sample of at
most `baseline_sample_chars` characters (baseline.fit_sampled), so its memory
stays bounded at any corpus size. This bench fits, on the prepared splits of
each workspace given (a folder holding data/prepared after `dvc repro prepare`,
e.g. one of bench/scale.py's), each in a process of its own:

- `exact`: TfidfVectorizer word 1-2 + char_wb 2-5 grams, every training row in memory (baseline.fit);
- `hashed`: the hashed features, every training row in memory (the sample cap lifted);
- `sampled`: what the evaluate stage fits (the params' sample cap).

Every one tunes C on the validation split (the same grid, cold starts) and is
scored on test; it prints validation and test accuracy, the test accuracy's
difference from `exact` with a McNemar p, fit seconds and the peak RSS.

    python bench/baseline_scale.py /tmp/scale/reviews-100000 [more workspaces] [--variants exact,hashed,sampled]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("exact", "hashed", "sampled")


def child(work: Path, variant: str, out: Path) -> None:
    from sentipipe.tasks.classifier import baseline  # noqa: PLC0415 - the parent stays light

    frames = {s: pd.read_parquet(work / f"data/prepared/{s}.parquet") for s in ("val", "test")}
    classes = sorted(set(frames["val"]["label"].astype(str)))
    index = {c: i for i, c in enumerate(classes)}
    y = {s: f["label"].astype(str).map(index).to_numpy() for s, f in frames.items()}
    texts = {s: f["text"].astype(str).tolist() for s, f in frames.items()}
    train = work / "data/prepared/train.parquet"
    start = time.perf_counter()
    if variant == "exact":
        frame = pd.read_parquet(train, columns=["text", "label"])
        fitted = baseline.fit(
            frame["text"].astype(str).tolist(), frame["label"].astype(str).map(index).to_numpy(), texts["val"], y["val"]
        )
    else:
        params = yaml.safe_load((REPO / "params.yaml").read_text())["classifier"]["evaluate"]
        cap = params["baseline_sample_chars"] if variant == "sampled" else 10**15
        fitted = baseline.fit_sampled(train, classes, texts["val"], y["val"], max_chars=cap)
    seconds = time.perf_counter() - start
    predicted = {s: fitted.predict_proba(texts[s]).argmax(1) for s in ("val", "test")}
    np.save(out.with_suffix(".npy"), predicted["test"] == y["test"])
    result = {
        "variant": variant,
        "C": fitted.c,
        "sample": fitted.sample,
        **{f"{s}_accuracy": float((predicted[s] == y[s]).mean()) for s in ("val", "test")},
        "fit_seconds": round(seconds, 1),
        "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }
    out.write_text(json.dumps(result))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workspaces", nargs="+", type=Path)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--child", nargs=3, metavar=("WORK", "VARIANT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], Path(args.child[2]))
        return 0
    from sentipipe.stats import mcnemar  # noqa: PLC0415

    print(
        f"{'workspace':<32}{'variant':<9}{'train rows':>12}{'C':>6}{'val':>8}{'test':>8}{'vs exact':>10}"
        f"{'McNemar p':>11}{'fit s':>8}{'peak GB':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for work in args.workspaces:
            rows = pd.read_parquet(work / "data/prepared/train.parquet", columns=["label"]).shape[0]
            done = {}
            for variant in args.variants.split(","):
                out = Path(tmp) / f"{work.name}-{variant}.json"
                command = [sys.executable, __file__, str(work), "--child", str(work), variant, str(out)]
                subprocess.run(command, check=True)
                done[variant] = json.loads(out.read_text())
                right = np.load(out.with_suffix(".npy"))
                r = done[variant]
                versus, p = "", ""
                if variant != "exact" and "exact" in done:
                    exact = np.load(Path(tmp) / f"{work.name}-exact.npy")
                    versus = f"{r['test_accuracy'] - done['exact']['test_accuracy']:+.4f}"
                    p = f"{mcnemar(right, exact)['p_value']:.3g}"
                fitted_rows = r["sample"]["rows"] if r["sample"] else rows
                print(
                    f"{work.name:<32}{variant:<9}{fitted_rows:>12}{r['C']:>6g}{r['val_accuracy']:>8.4f}"
                    f"{r['test_accuracy']:>8.4f}{versus:>10}{p:>11}{r['fit_seconds']:>8.1f}{r['peak_gb']:>9.2f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
