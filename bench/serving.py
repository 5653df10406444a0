"""Prediction speed of the champion classifier, against baselines measured in the same run.

In process, batched (the test split's texts repeated to --rows, batches of --batch):
  - the model as it was served before this work: torch's own nn.LSTM/GRU forward in fp32,
    temperature 1, unseen words as <unk> (the baseline, ratio 1.00);
  - torch's dynamic int8 quantization of that forward (what was served before the folded path);
  - the folded path (tasks/classifier/folded.py) in fp32: exact, only faster;
  - the model as served now (the registry's artifact: the folded path, int8 recurrence if
    evaluate chose it, calibrated, unseen words from their subwords);
  - the TF-IDF word+char logistic regression (C tuned on val), predict only.
Explanations: p50/p95 of one explained sentence.
Over REST, on loopback: `sentipipe serve` against `mlflow models serve` on the same model; batched
throughput, then --clients concurrent clients sending one sentence each (--requests in all).

    python bench/serving.py [--rows 20000] [--batch 1000] [--clients 8] [--requests 800] [--workers 1]
                            [--before OLD/served.pt]

Run `make run` first (the champion of the workspace's store is used).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests
import torch

from sentipipe import model_cache, tracking
from sentipipe.data.paths import prepared
from sentipipe.tasks.classifier import baseline
from sentipipe.tasks.classifier.explain import explain
from sentipipe.tasks.classifier.params import load
from sentipipe.tasks.classifier.predictor import Predictor, quantize
from sentipipe.tasks.classifier.served import ServedClassifier


def rate(score, texts: list[str], batch: int, repeats: int = 3) -> float:
    """Best of `repeats` passes: sentences per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            score(texts[i : i + batch])
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def start(command: list[str], url: str, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/ping", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"{' '.join(command)} did not start")


def rest(url: str, texts: list[str], batch: int, clients: int, requests_total: int) -> dict:
    session = requests.Session()
    body = lambda chunk: {"dataframe_split": {"columns": ["text"], "data": [[t] for t in chunk]}}  # noqa: E731
    session.post(f"{url}/invocations", json=body(texts[:10])).raise_for_status()
    start_time = time.perf_counter()
    for i in range(0, len(texts), batch):
        session.post(f"{url}/invocations", json=body(texts[i : i + batch]), timeout=300).raise_for_status()
    batched = len(texts) / (time.perf_counter() - start_time)

    def client(k: int) -> list[float]:
        own, latencies = requests.Session(), []
        for text in texts[k:requests_total:clients]:
            t0 = time.perf_counter()
            own.post(f"{url}/invocations", json={"inputs": [text]}, timeout=60).raise_for_status()
            latencies.append((time.perf_counter() - t0) * 1000)
        return latencies

    start_time = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = [x for part in pool.map(client, range(clients)) for x in part]
    seconds = time.perf_counter() - start_time
    p50, p95 = np.percentile(latencies, [50, 95])
    return {"batched": batched, "requests_per_s": len(latencies) / seconds, "p50": p50, "p95": p95}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=800)
    ap.add_argument("--workers", type=int, default=1, help="sentipipe serve --workers")
    ap.add_argument("--skip-mlflow", action="store_true", help="do not start `mlflow models serve` for comparison")
    ap.add_argument("--model-uri", help="default: models:/<classifier.register.model_name>@champion")
    ap.add_argument(
        "--before",
        help="another model's predictor file (served.pt), e.g. an earlier default: its torch fp32 forward joins the "
        "in-process rows, so the served model is also compared with it in the same run",
    )
    args = ap.parse_args()
    params = load()
    uri = tracking.tracking_uri(params.tracking)
    model_uri = args.model_uri or f"models:/{params.classifier.register.model_name}@champion"
    served = model_cache.load_python_model(model_cache.local_model(uri, model_uri), ServedClassifier).predictor
    before = served.serving(1.0, False, False)
    before.model = before.network  # torch's own forward, not the folded path
    torch_int8 = served.serving(served.temperature, True, served.subwords)
    torch_int8.model = quantize(torch_int8.network)
    folded_fp32 = served.serving(served.temperature, False, served.subwords)
    frames = {s: pd.read_parquet(prepared(s)) for s in ("train", "val", "test")}
    texts = frames["test"]["text"].tolist()
    texts = (texts * (args.rows // len(texts) + 1))[: args.rows]
    index = {label: i for i, label in enumerate(served.labels)}
    y = {s: f["label"].map(index).to_numpy() for s, f in frames.items()}
    reference = baseline.fit(frames["train"]["text"].tolist(), y["train"], frames["val"]["text"].tolist(), y["val"])

    rates = {
        "before: torch fp32 forward, T=1, unseen words <unk>": rate(before.predict_proba, texts, args.batch),
        "torch's int8 forward (served until the folded path)": rate(torch_int8.predict_proba, texts, args.batch),
        "folded path, fp32 (exact)": rate(folded_fp32.predict_proba, texts, args.batch),
        f"served: folded, {'int8' if served.quantized else 'fp32'}, T={served.temperature:.2f}, "
        f"{'subwords' if served.subwords else '<unk>'}": rate(served.predict_proba, texts, args.batch),
        f"TF-IDF word+char LR (C={reference.c:g})": rate(reference.predict_proba, texts, args.batch),
    }
    served_key, reference_key = list(rates)[3], list(rates)[4]
    if args.before:
        other = Predictor.load(args.before).serving(1.0, False, False)
        other.model = other.network
        spec = other.network.spec
        before_key = f"--before: torch fp32 forward ({spec.cell}, hidden {spec.hidden_size}), T=1, <unk>"
        rates[before_key] = rate(other.predict_proba, texts, args.batch)
    one = [frames["test"]["text"].iloc[i] for i in range(200)]
    explain(served, one[:5])
    timings = []
    for text in one:
        t0 = time.perf_counter()
        explain(served, [text])
        timings.append((time.perf_counter() - t0) * 1000)
    explain_p50, explain_p95 = np.percentile(timings, [50, 95])

    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    results = {}
    ours = [sys.executable, "-m", "sentipipe.cli", "serve", "--model-uri", model_uri, "--workers", str(args.workers)]
    servers = {"sentipipe serve": ours}
    if not args.skip_mlflow:
        mlflow_cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
        servers["mlflow models serve"] = mlflow_cmd
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for name, command in servers.items():
        port = 5100 + len(results)
        proc = start([*command, "--port", str(port)], f"http://127.0.0.1:{port}", env)
        try:
            results[name] = rest(
                f"http://127.0.0.1:{port}", texts[: args.requests * 4], args.batch, args.clients, args.requests
            )
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)

    first = next(iter(rates.values()))
    print(f"\nmodel {model_uri}; {len(texts)} sentences in batches of {args.batch}; {os.cpu_count()} CPUs")
    print(f"{'in process, batched':<60}{'sentences/s':>12}{'ratio':>8}")
    for name, value in rates.items():
        print(f"{name:<60}{value:>12.0f}{value / first:>8.2f}")
    ratio = rates[served_key] / rates[reference_key]
    if args.before:
        print(f"served / --before's fp32 forward: {rates[served_key] / rates[before_key]:.2f}")
    print(f"served / TF-IDF LR: {ratio:.2f}; torch threads: {torch.get_num_threads()}")
    print(f"one explained sentence (occlusion, in process): p50 {explain_p50:.1f} ms, p95 {explain_p95:.1f} ms")
    print(f"\nREST on loopback ({args.clients} concurrent clients, one sentence a request, {args.requests} requests):")
    print(f"{'server':<24}{'batched sent/s':>16}{'requests/s':>12}{'p50 ms':>9}{'p95 ms':>9}")
    for name, r in results.items():
        print(f"{name:<24}{r['batched']:>16.0f}{r['requests_per_s']:>12.0f}{r['p50']:>9.1f}{r['p95']:>9.1f}")
    if len(results) == 2:
        ours, theirs = results["sentipipe serve"], results["mlflow models serve"]
        print(f"requests/s, ours / MLflow's: {ours['requests_per_s'] / theirs['requests_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
