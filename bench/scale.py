"""Time and peak memory of every stage of both pipelines as the corpus grows.

Builds synthetic corpora of review-like texts (about 1,300 characters each:
sentences of IMDB's training reviews in ../shared/benchmarks/ drawn at random
and joined, so no two reviews are the same and the vocabulary grows as it
would; labelled by the majority of their sentences' review labels; without
that file, the default corpus's sentences and their human ratings),
written in chunks, then runs each stage's script as DVC would, in a workspace
of its own, and samples the resident memory of the stage's whole process tree
(spaCy workers included) ten times a second.

    python bench/scale.py [--sizes 100000,1000000] [--train-steps 150] [--stages ...] [--page]
    python bench/scale.py --from-log LOG --page   # the table of a run's printed output, into the docs
    python bench/scale.py --keep DIR --stages teacher --set classifier.distill.enabled=true \
        --set classifier.distill.teacher=FOLDER --page --table distill   # the distill set's teacher (its own table)

The classifier's stages (ingest ... register) run on the committed params.yaml
with only `data.*` changed (and `tracking.uri`, a store in the workspace);
the generator's (gen-tokenize ... gen-register) then read the same prepared
corpus. Training is the one stage whose work does not follow the corpus (its
budget is steps, capped by `max_steps` and wall time): `--train-steps` caps both
networks' optimizer steps (each search trial's too) so a bench finishes, and
the table gives its seconds per step (evaluations included) beside the wall
time; 0 keeps the committed budgets.

Prints, per size and stage, wall time, time per 1,000 reviews (per step for
training) and peak RSS, then each stage's time per review (per step) at the
largest size against the smallest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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

from common import parse_override

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO.parent / "shared" / "benchmarks" / "imdb-train.parquet"
STAGES = {
    "ingest": "pipeline/ingest.py",
    "prepare": "pipeline/prepare.py",
    "tokenize": "pipeline/classifier/tokenize_texts.py",
    "embed": "pipeline/classifier/embed.py",
    "teacher": "pipeline/classifier/teacher.py",
    "train": "pipeline/classifier/train.py",
    "evaluate": "pipeline/classifier/evaluate.py",
    "register": "pipeline/classifier/register.py",
    "gen-tokenize": "pipeline/generator/tokenize_texts.py",
    "gen-train": "pipeline/generator/train.py",
    "gen-evaluate": "pipeline/generator/evaluate.py",
    "gen-register": "pipeline/generator/register.py",
}
TRAINING = {"train": "reports/classifier/train.json", "gen-train": "reports/generator/train.json"}


def sentences() -> tuple[np.ndarray, np.ndarray]:
    """The sentences of IMDB's training reviews (../shared/benchmarks/imdb-train.parquet), each with its review's
    label (+1 / -1); without that file, the default corpus's sentences and the sign of their human rating."""
    if IMDB.is_file():
        frame = pd.read_parquet(IMDB)
        texts, signs = [], []
        for review, label in zip(frame["text"].astype(str), frame["label"].astype(str), strict=True):
            parts = [t for t in re.split(r"(?<=[.!?])\s+", re.sub(r"<br\s*/?>", " ", review)) if len(t) >= 20]
            texts += parts
            signs += [1 if label == "positive" else -1] * len(parts)
        return np.array(texts, dtype=object), np.array(signs)
    raw, _ = read_vader_corpora(["movie"], fetch_sdist())
    return raw["text"].to_numpy(), np.sign(raw["rating"].to_numpy())


def synthetic(path: Path, size: int, seed: int = 13, chunk: int = 20_000) -> None:
    texts, signs = sentences()
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
                    "label": ["positive" if signs[p].mean() > 0 else "negative" for p in picks],
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
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--train-steps", type=int, default=150, help="optimizer steps at most a training (0: params')")
    ap.add_argument("--stages", default=",".join(STAGES), help="a comma-separated subset, in pipeline order")
    ap.add_argument("--n-process", type=int, default=1, help="spaCy worker processes (classifier.tokenize.n_process)")
    ap.add_argument("--keep", help="build the corpora and workspaces here, and keep them")
    ap.add_argument("--page", action="store_true", help="write the table into docs/evidence.md (between markers)")
    ap.add_argument("--from-log", type=Path, help="no run: the figures of this earlier run's printed output")
    ap.add_argument("--run-commit", help="with --from-log: the commit that run measured")
    ap.add_argument("--set", action="append", default=[], help="section.key=value over the committed params, any depth")
    ap.add_argument("--table", help="--page writes between this table's markers, not the default pipeline's")
    args = ap.parse_args()
    if args.from_log:
        results, steps = from_log(args.from_log.read_text())
        source = f"the printed output of an earlier run ({args.from_log.name})"
        write_page(results, steps, source, args.run_commit, args.table)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    base["data"].update(source="file", path="corpus.parquet", text_column="text", label_column="label")
    base["classifier"]["tokenize"]["n_process"] = args.n_process
    if args.train_steps:
        for task in ("classifier", "generator"):
            base[task]["train"]["max_steps"] = args.train_steps
    for item in args.set:
        parse_override(base, item)
    stages = {name: STAGES[name] for name in args.stages.split(",")}
    results, steps = {}, {}
    with tempfile.TemporaryDirectory(prefix="sentipipe-scale-") as tmp:
        root = Path(args.keep or tmp)
        for size in sizes:
            work = root / f"reviews-{size}"
            work.mkdir(parents=True, exist_ok=True)
            store = {"uri": f"sqlite:///{work / 'mlflow.db'}"}
            (work / "params.yaml").write_text(yaml.safe_dump({**base, "tracking": store}, sort_keys=False))
            if not (work / "corpus.parquet").is_file():
                start = time.perf_counter()
                synthetic(work / "corpus.parquet", size)
                print(f"{size} reviews built in {time.perf_counter() - start:.0f}s", flush=True)
            for stage, script in stages.items():
                seconds, peak = measure([sys.executable, str(REPO / script)], work, env)
                results[(size, stage)] = (seconds, peak)
                if stage in TRAINING:
                    steps[(size, stage)] = trained_steps(work / TRAINING[stage])
                print(f"  {row(size, stage, results, steps)}", flush=True)
    print(f"\n{'reviews':>9} {'stage':<13}{'seconds':>9}{'per 1k (step)':>15}{'peak RSS GB':>13}")
    for size, stage in results:
        print(row(size, stage, results, steps))
    small, large = min(sizes), max(sizes)
    if small < large:
        print(f"\ntime per review (per step for training) at {large} against {small} (target: at most 1.3):")
        for stage in stages:
            ratio = unit_time(large, stage, results, steps) / unit_time(small, stage, results, steps)
            print(f"  {stage:<13}{ratio:.2f}")
    if args.page:
        command = f"python bench/scale.py --sizes {args.sizes} --train-steps {args.train_steps}"
        command += "".join(f" --set {item}" for item in args.set) + (f" --stages {args.stages}" if args.table else "")
        write_page(results, steps, f"`{command}`", table=args.table)
    return 0


PAGE = REPO / "docs" / "evidence.md"


def from_log(text: str) -> tuple[dict, dict]:
    """The results of a run from its printed rows (a run stopped early gives the stages it finished)."""
    results, steps = {}, {}
    for size, stage, seconds, per, unit, peak in ROW.findall(text):
        results[(int(size), stage)] = (float(seconds), float(peak))
        if unit == "s/step":
            steps[(int(size), stage)] = round(float(seconds) / float(per))
    return results, steps


ROW = re.compile(r"^\s*(\d+) (\S+)\s+([\d.]+)\s+([\d.]+) (s/step|s/1k)\s+([\d.]+)$", re.MULTILINE)


def markers(table: str | None) -> tuple[str, str]:
    """The page's markers around the default pipeline's table, or around another table's (`--table`)."""
    name = f"bench/scale.py {table}" if table else "bench/scale.py"
    return f"<!-- {name}: start -->", f"<!-- {name}: end -->"


def write_page(results: dict, steps: dict, source: str, commit: str | None = None, table: str | None = None) -> None:
    start, end = markers(table)
    sizes = sorted({size for size, _ in results})
    small, large = sizes[0], sizes[-1]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    commit = commit or head.stdout.strip()
    lines = [
        start,
        f"Written by `python bench/scale.py --page` from {source}, code at {commit}; the sandbox "
        "(2 cores, 24 GiB, no GPU). Time per review for every stage but the two trainings, whose budget is steps: "
        "time per optimizer step there (evaluations included).",
        "",
        f"| stage | {small:,} reviews: s | peak GB | {large:,} reviews: s | peak GB | per review (step), "
        f"{large:,} / {small:,} |",
        "|---|---|---|---|---|---|",
    ]
    for stage in dict.fromkeys(stage for _, stage in results):
        s1, p1 = results.get((small, stage), (None, None))
        if (large, stage) not in results:
            lines.append(f"| {stage} | {s1:.0f} | {p1:.2f} | not run | | |")
            continue
        ratio = unit_time(large, stage, results, steps) / unit_time(small, stage, results, steps)
        s2, p2 = results[(large, stage)]
        lines.append(f"| {stage} | {s1:.0f} | {p1:.2f} | {s2:.0f} | {p2:.2f} | {ratio:.2f} |")
    lines.append(end)
    text = PAGE.read_text(encoding="utf-8")
    if start not in text:
        raise SystemExit(f"{PAGE}: no {start} marker: add the markers where the table goes")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    PAGE.write_text(head + "\n".join(lines) + tail, encoding="utf-8")


def trained_steps(report: Path) -> int:
    """Optimizer steps a training ran, its search trials' included."""
    done = json.loads(report.read_text())
    trials = done.get("search", {}).get("trials", [])
    return int(sum(t.get("steps", 0) for t in trials) or done.get("steps_run", 0))


def unit_time(size: int, stage: str, results: dict, steps: dict) -> float:
    """Seconds per review, or per optimizer step for a training."""
    seconds = results[(size, stage)][0]
    return seconds / steps[(size, stage)] if (size, stage) in steps else seconds / size


def row(size: int, stage: str, results: dict, steps: dict) -> str:
    seconds, peak = results[(size, stage)]
    per = unit_time(size, stage, results, steps)
    per = f"{per:.3f} s/step" if (size, stage) in steps else f"{1000 * per:.3f} s/1k"
    return f"{size:>9} {stage:<13}{seconds:>9.1f}{per:>15}{peak:>13.2f}"


if __name__ == "__main__":
    sys.exit(main())
