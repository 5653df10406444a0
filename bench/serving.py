"""Prediction speed of the champion classifier, against baselines measured in the same run.

In process, batched (the test split's texts repeated to --rows, batches of --batch):
  - the model as it was served before this work: torch's own nn.LSTM/GRU forward in fp32,
    temperature 1, unseen words as <unk> (the baseline, ratio 1.00);
  - torch's dynamic int8 quantization of that forward (what was served before the folded path);
  - the folded path (tasks/classifier/folded.py) in fp32: exact, only faster;
  - the model as served now (the registry's artifact: the folded path, int8 recurrence if
    evaluate chose it, calibrated, unseen words from their subwords);
  - the TF-IDF word+char logistic regression (C tuned on val), predict only;
  - the served model without its blend with that reference (classifier.evaluate.blend): the network alone.
One sentence a call, in process: p50/p95 of the served model and of the network alone, calls interleaved
(the blend's cost on a one-sentence request). Explanations: p50/p95 of one explained sentence.
Over REST, on loopback: `sentipipe serve` against `mlflow models serve` on the same model; batched
throughput, then --clients concurrent clients sending one sentence each (--requests in all).

The prediction log's cost (--log-pairs N, alone): two `sentipipe serve` of the same champion, the
prediction log off and on (monitoring.enabled, params otherwise the workspace's, flush_rows and
flush_seconds as given), measured in turns: N pairs, each an off round and an on round (which goes
first alternates, so a machine slowing down or speeding up during the run weighs on both sides).
Each round: batched sentences/s (--rows in batches of --batch), then --clients concurrent one-sentence
requests (--requests in all: requests/s, p95); the server's CPU time for each, from /proc.
Printed: each side's median, the median of the pairs' on/off ratios and their spread (min to max),
and the rows the log holds after SIGTERM against the rows the on server scored.

    python bench/serving.py [--rows 20000] [--batch 1000] [--clients 8] [--requests 800] [--workers 1]
                            [--before OLD/served.pt]
    python bench/serving.py --log-pairs 9 [--rows 20000] [--batch 1000] [--requests 800] [--clients 8]
                            [--flush-rows 1000] [--flush-seconds 10]

Run `make run` first (the champion of the workspace's store is used).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import requests
import torch
import yaml

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every process in a process group: a server and its workers (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == pgid:  # pgrp; utime and stime are fields 14 and 15 of the whole line
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rest(url: str, texts: list[str], batch: int, clients: int, requests_total: int, pgid: int | None = None) -> dict:
    """Batched throughput, then `clients` concurrent one-sentence clients; with `pgid`, the server's CPU time
    for each (a busy machine slows wall-clock figures, far less the CPU a request costs)."""
    cpu = (lambda: group_cpu_seconds(pgid)) if pgid else (lambda: 0.0)
    session = requests.Session()
    body = lambda chunk: {"dataframe_split": {"columns": ["text"], "data": [[t] for t in chunk]}}  # noqa: E731
    session.post(f"{url}/invocations", json=body(texts[:10])).raise_for_status()
    cpu_start, start_time = cpu(), time.perf_counter()
    for i in range(0, len(texts), batch):
        session.post(f"{url}/invocations", json=body(texts[i : i + batch]), timeout=300).raise_for_status()
    batched = len(texts) / (time.perf_counter() - start_time)
    batched_cpu = (cpu() - cpu_start) * 1e6 / len(texts)

    def client(k: int) -> list[float]:
        own, latencies = requests.Session(), []
        for text in texts[k:requests_total:clients]:
            t0 = time.perf_counter()
            own.post(f"{url}/invocations", json={"inputs": [text]}, timeout=60).raise_for_status()
            latencies.append((time.perf_counter() - t0) * 1000)
        return latencies

    cpu_start, start_time = cpu(), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = [x for part in pool.map(client, range(clients)) for x in part]
    seconds = time.perf_counter() - start_time
    request_cpu = (cpu() - cpu_start) * 1e3 / len(latencies)
    p50, p95 = np.percentile(latencies, [50, 95])
    return {
        "batched": batched,
        "requests_per_s": len(latencies) / seconds,
        "p50": p50,
        "p95": p95,
        "batched_cpu_us_per_row": batched_cpu,
        "cpu_ms_per_request": request_cpu,
    }


def commit() -> str:
    """The code measured: this checkout's commit."""
    command = ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip() or "unknown"


def log_pairs(args, uri: str, model_uri: str, texts: list[str]) -> None:
    """Logging off against on, in alternating turns on two live servers; the median of the pairs' ratios."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    raw = yaml.safe_load(Path("params.yaml").read_text())
    folder = Path(tempfile.mkdtemp(prefix="bench-log-"))
    monitoring = {
        "enabled": True,
        "log": str(folder / "predictions"),
        "flush_rows": args.flush_rows,
        "flush_seconds": args.flush_seconds,
    }
    raw["monitoring"] = {**(raw.get("monitoring") or {}), **monitoring}
    (folder / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    sides = {"off": "params.yaml", "on": str(folder / "params.yaml")}
    procs, urls = {}, {}
    try:
        for side, params_file in sides.items():
            port = free_port()
            command = [sys.executable, "-m", "sentipipe.cli", "--params", params_file, "serve"]
            command += ["--model-uri", model_uri, "--workers", str(args.workers), "--port", str(port)]
            urls[side] = f"http://127.0.0.1:{port}"
            procs[side] = start(command, urls[side], env)
        requests_total, sent = args.requests, {"off": 0, "on": 0}
        batched_texts = texts
        rounds: dict[str, list[dict]] = {"off": [], "on": []}
        for pair in range(args.log_pairs):
            order = ("off", "on") if pair % 2 == 0 else ("on", "off")
            for side in order:
                rounds[side].append(
                    rest(urls[side], batched_texts, args.batch, args.clients, requests_total, procs[side].pid)
                )
                sent[side] += 10 + len(batched_texts) + requests_total
            on, off = rounds["on"][-1], rounds["off"][-1]
            print(
                f"pair {pair + 1} ({order[0]} first): batched sent/s off {off['batched']:.0f} on {on['batched']:.0f}; "
                f"requests/s off {off['requests_per_s']:.0f} on {on['requests_per_s']:.0f}; "
                f"p95 ms off {off['p95']:.1f} on {on['p95']:.1f}; server CPU ms/request off "
                f"{off['cpu_ms_per_request']:.2f} on {on['cpu_ms_per_request']:.2f}",
                flush=True,
            )
    finally:
        for proc in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            proc.wait(timeout=120)
    files = sorted((folder / "predictions").rglob("*.parquet"))
    logged = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    dropped = sum(int(pq.read_table(f, columns=["dropped_before"])["dropped_before"].to_numpy().sum()) for f in files)
    shutil.rmtree(folder)

    print(f"\nmodel {model_uri}; {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.2f} at the end)")
    print(
        f"prediction log off / on, {args.log_pairs} pairs alternated (the first side alternates); a round: "
        f"{len(batched_texts)} sentences in batches of {args.batch}, then {requests_total} one-sentence requests "
        f"from {args.clients} clients; log flush_rows {args.flush_rows}, flush_seconds {args.flush_seconds:g}"
    )
    print(f"{'measure':<28}{'off (median)':>14}{'on (median)':>14}{'on/off median':>15}{'ratio min..max':>18}")
    table = [
        f"Written by `python bench/serving.py --log-pairs {args.log_pairs} --page` at commit {commit()} on "
        f"{model_uri}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end; a round: "
        f"{len(batched_texts)} sentences in batches of {args.batch}, then {requests_total} one-sentence "
        f"requests from {args.clients} clients; flush_rows {args.flush_rows}, flush_seconds {args.flush_seconds:g}.",
        "",
        "| measure | log off (median) | log on (median) | on/off, median of pairs | min..max |",
        "|---|---|---|---|---|",
    ]
    for key, name in (
        ("batched", "batched sentences/s"),
        ("requests_per_s", "requests/s"),
        ("p50", "p50 ms"),
        ("p95", "p95 ms"),
        ("batched_cpu_us_per_row", "server CPU us/row, batched"),
        ("cpu_ms_per_request", "server CPU ms/request"),
    ):
        off = [r[key] for r in rounds["off"]]
        on = [r[key] for r in rounds["on"]]
        ratios = [b / a for a, b in zip(off, on, strict=True)]
        print(
            f"{name:<28}{statistics.median(off):>14.2f}{statistics.median(on):>14.2f}"
            f"{statistics.median(ratios):>15.3f}{min(ratios):>9.3f}..{max(ratios):.3f}"
        )
        table.append(
            f"| {name} | {statistics.median(off):.2f} | {statistics.median(on):.2f} | "
            f"{statistics.median(ratios):.3f} | {min(ratios):.3f}..{max(ratios):.3f} |"
        )
    print(
        f"the log after SIGTERM: {logged} rows in {len(files)} files, {dropped} dropped (memory bound), "
        f"of {sent['on']} rows the on server scored"
    )
    if logged + dropped != sent["on"]:
        raise SystemExit(f"the log holds {logged} + {dropped} dropped rows, not the {sent['on']} scored")
    table += ["", f"The log after SIGTERM: {logged} rows of the {sent['on']} the on server scored, {dropped} dropped."]
    if args.page:
        page = Path(__file__).resolve().parents[1] / "docs" / "monitoring.md"
        first, last = "<!-- bench/serving.py --log-pairs: start -->", "<!-- bench/serving.py --log-pairs: end -->"
        head, _, tail = page.read_text(encoding="utf-8").partition(first)
        page.write_text(head + "\n".join([first, *table, last]) + tail.partition(last)[2], encoding="utf-8")


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
    ap.add_argument(
        "--log-pairs",
        type=int,
        nargs="?",
        const=7,
        help="only compare the prediction log off and on over REST, in this many alternated pairs (5 at least; "
        "the flag alone: 7)",
    )
    ap.add_argument("--page", action="store_true", help="with --log-pairs: write the table into docs/monitoring.md")
    ap.add_argument("--flush-rows", type=int, default=1000, help="with --log-pairs: monitoring.flush_rows")
    ap.add_argument("--flush-seconds", type=float, default=10.0, help="with --log-pairs: monitoring.flush_seconds")
    args = ap.parse_args()
    params = load()
    uri = tracking.tracking_uri(params.tracking)
    model_uri = args.model_uri or f"models:/{params.classifier.register.model_name}@champion"
    if args.log_pairs is not None:
        if args.log_pairs < 5:
            raise SystemExit("--log-pairs: 5 pairs at least (the median of fewer is one noisy round)")
        texts = pd.read_parquet(prepared("test"))["text"].tolist()
        texts = (texts * (max(args.rows, args.requests) // len(texts) + 1))[: max(args.rows, args.requests)]
        log_pairs(args, uri, model_uri, texts)
        return 0
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
    alone = served.blended(None, 0.0)
    alone_key = f"served without its blend (weight {served.blend:g}): the network alone"
    rates[alone_key] = rate(alone.predict_proba, texts, args.batch)
    if args.before:
        other = Predictor.load(args.before).serving(1.0, False, False)
        other.model = other.network
        spec = other.network.spec
        before_key = f"--before: torch fp32 forward ({spec.cell}, hidden {spec.hidden_size}), T=1, <unk>"
        rates[before_key] = rate(other.predict_proba, texts, args.batch)
    one = [frames["test"]["text"].iloc[i] for i in range(200)]
    single: dict[str, list[float]] = {"served": [], "alone": []}
    for text in one * 3:  # interleaved, so a machine speeding up or slowing down weighs on both
        for name, model in (("served", served), ("alone", alone)):
            t0 = time.perf_counter()
            model.predict_proba([text])
            single[name].append((time.perf_counter() - t0) * 1000)
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
    print(f"served / the network alone (batched): {rates[served_key] / rates[alone_key]:.2f}")
    p50, p95 = ({k: float(np.percentile(v, q)) for k, v in single.items()} for q in (50, 95))
    print(
        f"one sentence a call: served p50 {p50['served']:.2f} ms, p95 {p95['served']:.2f} ms; the network alone "
        f"p50 {p50['alone']:.2f} ms, p95 {p95['alone']:.2f} ms (ratio of p50s {p50['served'] / p50['alone']:.2f})"
    )
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
