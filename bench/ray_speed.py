"""Rows per second of tokenize and batch prediction on the local engine and on a Ray cluster of 1 and 2 workers.

The same chunks go through sentipipe.compute either way (what `sentipipe predict --input` and the tokenize stage
run); the cluster is real: a head node, then a worker node joining it, each a `ray start --num-cpus=1` process
on this machine. The local engine runs in this process with one torch thread (OMP_NUM_THREADS=1), like a
worker. Each configuration is warmed up once (worker processes started, spaCy loaded); every prediction run
still starts its actors and loads the model in each, as a `sentipipe predict` call does. Every configuration's
results are checked equal to the local engine's.

    OMP_NUM_THREADS=1 python bench/ray_speed.py [--corpus ../shared/benchmarks/imdb-train.parquet]
        [--rows 4000] [--chunk-rows 250] [--model-folder ~/.cache/sentipipe/models/.../1-...] [--page]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pandas as pd

from sentipipe import compute
from sentipipe.batch import frame_rows
from sentipipe.config import ComputeParams
from sentipipe.model_cache import cache_root, load_python_model
from sentipipe.tasks.classifier.params import load as load_classifier_params
from sentipipe.tasks.classifier.served import ServedClassifier
from sentipipe.tasks.classifier.tokenize import spill_lines
from sentipipe.text.tokenizer import TokenizerSettings

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).parent / "ray")
START, END = "<!-- bench/ray_speed.py: start -->", "<!-- bench/ray_speed.py: end -->"


def newest_classifier() -> Path:
    """The project's classifier as `sentipipe predict` used it last (the newest of its versions in the cache)."""
    name = load_classifier_params(ROOT / "params.yaml").classifier.register.model_name
    found = [f.parent for f in sorted(cache_root().glob(f"*/{name}/*/MLmodel"), key=lambda f: f.stat().st_mtime)]
    if not found:
        raise SystemExit("no classifier in the model cache: run `sentipipe predict` once, or pass --model-folder")
    return found[-1]


def start_node(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [RAY, "start", "--block", "--num-cpus=1", "--object-store-memory=200000000", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_nodes(address: str, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True).stdout
        if len(re.findall(r"node_[0-9a-f]{56}", status.split("Active:", 1)[-1].split("Pending:", 1)[0])) >= count:
            return
        time.sleep(1)
    raise SystemExit(f"the cluster at {address} did not reach {count} node(s) in {timeout:.0f} s")


def stop_nodes(nodes: list[subprocess.Popen]) -> None:
    for proc in nodes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in nodes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def measure(chunks: list[list[str]], engine: ComputeParams, folder: Path) -> dict:
    """Seconds of each work over all chunks and to its first chunk (the start-up), its results, where it ran."""
    tokenize = partial(spill_lines, settings=TokenizerSettings(max_length=2**31), batch_size=1000, n_process=1)
    build = partial(load_python_model, folder, ServedClassifier)
    out = {}
    list(compute.map_chunks(tokenize, chunks[:4], engine, compute.Usage(engine.engine)))  # warm-up: workers, spaCy
    for name, run in (
        ("tokenize", lambda usage: compute.map_chunks(tokenize, chunks, engine, usage)),
        ("predict", lambda usage: compute.map_with(build, frame_rows, chunks, engine, usage)),
    ):
        usage, results, first = compute.Usage(engine.engine), [], None
        started = time.perf_counter()
        for result in run(usage):
            first = time.perf_counter() - started if first is None else first
            results.append(result)
        out[name] = {"seconds": time.perf_counter() - started, "first": first, "results": results, "usage": usage}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared/benchmarks/imdb-train.parquet"))
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--chunk-rows", type=int, default=250)
    ap.add_argument("--model-folder", type=Path, help="a served classifier's folder (default: the newest cached)")
    ap.add_argument("--page", action="store_true", help="write the table into docs/team-setup.md")
    args = ap.parse_args()
    folder = args.model_folder or newest_classifier()
    load_before = os.getloadavg()[0]
    texts = pd.read_parquet(args.corpus, columns=["text"])["text"].head(args.rows).tolist()
    chunks = [texts[i : i + args.chunk_rows] for i in range(0, len(texts), args.chunk_rows)]
    print(f"{len(texts)} texts of {Path(args.corpus).name} in {len(chunks)} chunks; model {folder}", flush=True)

    runs = {"local (this process)": measure(chunks, ComputeParams(engine="local"), folder)}
    ray_engine = ComputeParams(engine="ray", chunk_rows=args.chunk_rows)
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as temp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            address = f"127.0.0.1:{s.getsockname()[1]}"
        log, nodes = Path(temp) / "nodes.log", []
        try:
            head = ["--head", f"--port={address.split(':')[1]}", "--include-dashboard=false", f"--temp-dir={temp}"]
            nodes.append(start_node(head, log))
            wait_for_nodes(address, 1)
            os.environ[compute.ADDRESS_ENV] = address
            runs["Ray, 1 worker"] = measure(chunks, ray_engine, folder)
            nodes.append(start_node([f"--address={address}"], log))
            wait_for_nodes(address, 2)
            runs["Ray, 2 workers"] = measure(chunks, ray_engine, folder)
        finally:
            import ray

            ray.shutdown()
            stop_nodes(nodes[::-1])

    local = runs["local (this process)"]
    lines = [
        f"Written by `python bench/ray_speed.py{' --page' if args.page else ''}` on {len(texts)} texts of "
        f"`{Path(args.corpus).name}` in chunks of {args.chunk_rows}, {os.cpu_count()} CPU cores "
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after: other jobs share them; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}).",
        "",
        "| engine | tokenize rows/s | x local | predict rows/s | x local | predict: first chunk after | nodes used |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, run in runs.items():
        if run["tokenize"]["results"] != local["tokenize"]["results"] or not all(
            a.equals(b) for a, b in zip(run["predict"]["results"], local["predict"]["results"], strict=True)
        ):
            raise SystemExit(f"{name}: results differ from the local engine's")
        rate = {w: len(texts) / run[w]["seconds"] for w in ("tokenize", "predict")}
        base = {w: len(texts) / local[w]["seconds"] for w in ("tokenize", "predict")}
        lines.append(
            f"| {name} | {rate['tokenize']:,.0f} | {rate['tokenize'] / base['tokenize']:.2f} "
            f"| {rate['predict']:,.0f} | {rate['predict'] / base['predict']:.2f} "
            f"| {run['predict']['first']:.1f} s | {len(run['predict']['usage'].chunks)} |"
        )
    print("\n".join(lines))
    if args.page:
        page = ROOT / "docs" / "team-setup.md"
        head, _, tail = page.read_text(encoding="utf-8").partition(START)
        page.write_text(head + "\n".join([START, *lines, END]) + tail.partition(END)[2], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
