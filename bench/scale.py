"""Time and peak memory of ingest, prepare and tokenize as the corpus grows.

Builds synthetic corpora of review-like texts (about 1,300 characters each:
sentences of the default corpus drawn at random and joined, so no two reviews
are the same; labelled by the sign of their sentences' mean human rating),
written in chunks, then runs each stage's script as DVC would, in a workspace
of its own, and samples the resident memory of the stage's whole process tree
(spaCy workers included) ten times a second.

    python bench/scale.py [--sizes 20000,100000,1000000] [--n-process 1]

Prints, per size and stage, wall time, time per 1,000 reviews and peak RSS,
then each stage's time per review at the largest size against the smallest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from sentipipe.data.vader import fetch_sdist, read_vader_corpora

REPO = Path(__file__).resolve().parents[1]
STAGES = {
    "ingest": "pipeline/ingest.py",
    "prepare": "pipeline/prepare.py",
    "tokenize": "pipeline/classifier/tokenize_texts.py",
}


def synthetic(path: Path, size: int, seed: int = 13, chunk: int = 20_000) -> None:
    raw, _ = read_vader_corpora(["movie"], fetch_sdist())
    texts, ratings = raw["text"].to_numpy(), raw["rating"].to_numpy()
    rng = np.random.default_rng(seed)
    schema = pa.schema([("text", pa.string()), ("label", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, size, chunk):
            n = min(chunk, size - start)
            counts = rng.integers(8, 15, size=n)  # ~11 sentences of ~118 characters: ~1,300 characters
            picks = [rng.integers(0, len(texts), size=k) for k in counts]
            frame = pd.DataFrame(
                {
                    "text": [" ".join(texts[p]) for p in picks],
                    "label": ["positive" if ratings[p].mean() > 0 else "negative" for p in picks],
                }
            )
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))


def measure(command: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall seconds and the peak resident memory (GB) of the process and all its children."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr.read()[-3000:]}")
    return seconds, peak / 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,100000,1000000")
    ap.add_argument("--n-process", type=int, default=1, help="spaCy worker processes (classifier.tokenize.n_process)")
    ap.add_argument("--keep", help="build the corpora and workspaces here, and keep them")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    base["data"].update(source="file", path="corpus.parquet", text_column="text", label_column="label")
    base["classifier"]["tokenize"]["n_process"] = args.n_process
    results = {}
    with tempfile.TemporaryDirectory(prefix="sentipipe-scale-") as tmp:
        root = Path(args.keep or tmp)
        for size in sizes:
            work = root / f"reviews-{size}"
            work.mkdir(parents=True, exist_ok=True)
            (work / "params.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
            start = time.perf_counter()
            synthetic(work / "corpus.parquet", size)
            print(f"{size} reviews built in {time.perf_counter() - start:.0f}s", flush=True)
            for stage, script in STAGES.items():
                seconds, peak = measure([sys.executable, str(REPO / script)], work, env)
                results[(size, stage)] = (seconds, peak)
                print(f"  {stage:<9}{seconds:>8.1f} s {1000 * seconds / size:>8.3f} s/1k {peak:>6.2f} GB", flush=True)
    print(f"\n{'reviews':>9} {'stage':<9}{'seconds':>9}{'s per 1k':>10}{'peak RSS GB':>13}")
    for (size, stage), (seconds, peak) in results.items():
        print(f"{size:>9} {stage:<9}{seconds:>9.1f}{1000 * seconds / size:>10.3f}{peak:>13.2f}")
    small, large = min(sizes), max(sizes)
    print(f"\ntime per review at {large} against {small} (target: at most 1.3):")
    for stage in STAGES:
        ratio = (results[(large, stage)][0] / large) / (results[(small, stage)][0] / small)
        print(f"  {stage:<9}{ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
