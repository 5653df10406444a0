"""Prediction throughput in process and over REST, and single-request latency.

Uses the champion of the workspace's store (run `make run` first). Scores the
test split's texts repeated to --rows, in batches of --batch; then starts
`sentipipe serve` on a loopback port and posts the same batches, then
--requests single-sentence requests for p50/p95 latency. The in-process rate is
the baseline the REST figures are put against.

    python bench/serving.py [--rows 20000] [--batch 1000] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import requests

from sentipipe import tracking
from sentipipe.data.paths import prepared
from sentipipe.tasks.classifier.params import load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    import mlflow.pyfunc

    params = load()
    tracking.configure(params.tracking, params.classifier.experiment)
    uri = f"models:/{params.classifier.register.model_name}@champion"
    model = mlflow.pyfunc.load_model(uri)
    texts = pd.read_parquet(prepared("test"))["text"].tolist()
    texts = (texts * (args.rows // len(texts) + 1))[: args.rows]
    batches = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]

    model.predict(pd.DataFrame({"text": batches[0]}))  # warm-up
    start = time.perf_counter()
    for batch in batches:
        model.predict(pd.DataFrame({"text": batch}))
    in_process = len(texts) / (time.perf_counter() - start)

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentipipe.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if requests.get(f"{url}/ping", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        session = requests.Session()
        session.post(f"{url}/invocations", json={"dataframe_split": {"columns": ["text"], "data": [[texts[0]]]}})
        start = time.perf_counter()
        for batch in batches:
            body = {"dataframe_split": {"columns": ["text"], "data": [[t] for t in batch]}}
            session.post(f"{url}/invocations", json=body, timeout=120).raise_for_status()
        rest = len(texts) / (time.perf_counter() - start)
        latencies = []
        for text in texts[: args.requests]:
            t0 = time.perf_counter()
            session.post(f"{url}/invocations", json={"dataframe_records": [{"text": text}]}, timeout=30)
            latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    p50, p95 = np.percentile(latencies, [50, 95])
    print(f"model {uri}; {len(texts)} sentences in batches of {args.batch}")
    print(f"in process, batched : {in_process:8.0f} sentences/s   (baseline 1.00)")
    print(f"REST, batched       : {rest:8.0f} sentences/s   ({rest / in_process:.2f} of in process)")
    print(f"REST, one sentence  : p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(latencies)} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
