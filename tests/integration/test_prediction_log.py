"""The prediction log of a real `sentipipe serve` (monitoring.enabled), stopped by real signals.

SIGTERM: the server closes the log on its way out, so every answered row is in it,
named by the X-Request-Id its answer carried. SIGKILL: nothing runs on the way out;
the files already written stay whole and readable, and what is lost is at most the
rows that waited for the next file (fewer than flush_rows, flush_seconds being long).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
import yaml

from sentipipe import model_cache
from sentipipe.monitoring.monitor import read_log
from sentipipe.tasks.classifier.served import ServedClassifier
from tests.helpers import tiny_raw
from tests.integration.conftest import start_serve
from tests.servers import stop

KILL_FLUSH_ROWS = 20  # the SIGKILL server writes a file every 20 rows (flush_seconds: never, in a test's time)


def texts_for(i: int, n: int) -> list[str]:
    """Distinct texts, so each logged row can be matched to the request that sent it."""
    mood = ["a great and moving film", "dull , slow and far too long", "not bad at all"]
    return [f"review {i}.{j} : {mood[(i + j) % 3]}" for j in range(n)]


def start_server(work: Path, name: str, monitoring: dict) -> tuple[subprocess.Popen, str, Path]:
    """`sentipipe serve` with monitoring on (its own params file and log folder); the process, for signals."""
    log_dir = work / f"{name}-predictions"
    params = work / f"{name}-params.yaml"
    params.write_text(yaml.safe_dump(tiny_raw({"monitoring": {"enabled": True, "log": str(log_dir), **monitoring}})))
    proc, url, _ = start_serve(work, params=params, log_name=f"{name}.log", OMP_NUM_THREADS="1")
    return proc, url, log_dir


def post(url: str, texts: list[str]) -> dict:
    response = requests.post(f"{url}/invocations", json={"inputs": texts}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-Id"]
    return {"request_id": body["request_id"], "texts": texts, "predictions": body["predictions"]}


def read_all(log_dir: Path):
    """The log as `sentipipe monitor` reads it (hidden and temporary files passed over), vectors included."""
    frame = read_log(str(log_dir), columns=pq.read_schema(next(log_dir.rglob("[!.]*.parquet"))).names)
    frame["vector"] = [np.frombuffer(v, dtype=np.float16) for v in frame["vector"]]  # float16 bytes a row
    return frame


def parquet_rows(log_dir: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in log_dir.rglob("[!.]*.parquet"))


@pytest.fixture(scope="module")
def after_sigterm(classifier_work):
    """40 requests of 1 to 3 rows from 4 concurrent clients, then SIGTERM; flush_seconds long, so the rows
    reach the log at shutdown (or in a file of 50 rows before it)."""
    proc, url, log_dir = start_server(classifier_work, "sigterm", {"flush_rows": 50, "flush_seconds": 600})
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: post(url, texts_for(i, 1 + i % 3)), range(40)))
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        stop(proc)
    return answers, code, log_dir


@pytest.fixture(scope="module")
def after_sigkill(classifier_work):
    """`text: hash`, a file every KILL_FLUSH_ROWS rows; 47 one-row requests (two files written, 7 rows waiting),
    then SIGKILL."""
    monitoring = {"flush_rows": KILL_FLUSH_ROWS, "flush_seconds": 600, "text": "hash"}
    proc, url, log_dir = start_server(classifier_work, "sigkill", monitoring)
    try:
        answers = [post(url, texts_for(i, 1)) for i in range(47)]
        deadline = time.monotonic() + 30
        while parquet_rows(log_dir) < 40 and time.monotonic() < deadline:  # the writer catches up
            time.sleep(0.05)
        written_before_kill = parquet_rows(log_dir)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=30)
    finally:
        stop(proc)
    return answers, code, log_dir, written_before_kill


def test_sigterm_every_answered_row_is_in_the_log_as_answered(after_sigterm):
    answers, code, log_dir = after_sigterm
    assert code in (0, -signal.SIGTERM)  # uvicorn shuts down, then re-raises the signal it caught
    frame = read_all(log_dir).set_index("id")
    expected = {
        f"{a['request_id']}/{j}": (text, p)
        for a in answers
        for j, (text, p) in enumerate(zip(a["texts"], a["predictions"]))
    }
    assert len(expected) == sum(1 + i % 3 for i in range(40)) and sorted(frame.index) == sorted(expected)
    for row_id, (text, prediction) in expected.items():
        row = frame.loc[row_id]
        assert row["text"] == text and row["label"] == prediction["label"]
        assert row["request_id"] == row_id.split("/")[0]
        for key in (k for k in prediction if k.startswith("prob_")):
            assert row[key] == pytest.approx(prediction[key], rel=1e-6)  # float32 in the log
    assert (frame["dropped_before"] == 0).all() and (frame["source"] == "serve").all()
    assert (frame["tokens"] > 0).all() and len(frame["vector"].iloc[0]) == 16  # the tiny model's word vectors
    assert not list(log_dir.rglob("*.tmp"))


def test_sigkill_keeps_whole_files_and_loses_only_rows_not_yet_written(after_sigkill):
    answers, code, log_dir, written_before_kill = after_sigkill
    assert code == -signal.SIGKILL
    files = sorted(log_dir.rglob("[!.]*.parquet"))
    for f in files:
        assert pq.read_table(f).num_rows > 0  # each file present reads whole
    sent = [f"{a['request_id']}/0" for a in answers]
    frame = read_log(str(log_dir))
    assert len(frame) == written_before_kill == sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    logged = set(frame["id"])
    assert logged <= set(sent)
    assert logged == set(sent[: len(logged)])  # files hold the oldest rows; the lost ones are the newest
    lost = len(sent) - len(logged)
    # the bound: a SIGKILL loses the rows waiting for the next file, fewer than flush_rows (flush_seconds is long)
    assert lost < KILL_FLUSH_ROWS, f"{lost} rows lost of {len(sent)}; at most {KILL_FLUSH_ROWS - 1} were waiting"
    assert len(logged) >= 40  # the two files of 20 that were due were written before the kill


def test_a_file_left_half_written_by_a_kill_is_never_read(after_sigkill):
    """What a kill during a write leaves is a hidden `.part-….tmp`: the reader passes over it."""
    _, _, log_dir, written_before_kill = after_sigkill
    first = sorted(log_dir.rglob("[!.]*.parquet"))[0]
    half = first.read_bytes()[: first.stat().st_size // 2]
    (first.parent / f".{first.name}-killed.tmp").write_bytes(half)
    (first.parent / f".{first.stem}-killed.parquet").write_bytes(half)
    assert len(read_log(str(log_dir))) == written_before_kill


def test_text_hash_logs_the_sha256_and_no_text(after_sigkill):
    answers, _, log_dir, _ = after_sigkill
    frame = read_all(log_dir).set_index("id")
    assert len(frame) and frame["text"].isna().all()
    by_id = {f"{a['request_id']}/0": a["texts"][0] for a in answers}
    for row_id, row in frame.iterrows():
        assert row["text_sha256"] == hashlib.sha256(by_id[row_id].encode("utf-8")).hexdigest()
        assert (
            row["label"] == next(a for a in answers if a["request_id"] == row["request_id"])["predictions"][0]["label"]
        )
    raw = b"".join(f.read_bytes() for f in log_dir.rglob("[!.]*.parquet"))
    assert b"review 0.0" not in raw and not np.isnan(np.stack(frame["vector"]).astype(np.float32)).any()


def test_the_logged_features_are_each_texts_length_unseen_words_and_mean_word_vector(after_sigterm, classifier_work):
    """The vector is the mean of the word vectors the network reads (a word of the vocabulary: its row of the
    embedding; an unseen word: the vector made from its spelling), computed here the plain way."""
    answers, _, log_dir = after_sigterm
    frame = read_all(log_dir).set_index("id")
    ids = [f"{a['request_id']}/{j}" for a in answers for j in range(len(a["texts"]))]
    texts = [t for a in answers for t in a["texts"]] + ["zzyzx qwvrk : unheard-of wordz"]
    store = f"sqlite:///{classifier_work / 'mlflow.db'}"
    served = model_cache.load_python_model(
        model_cache.local_model(store, "models:/tiny-classifier@champion"), ServedClassifier
    )
    predictor = served.predictor
    token_lists = predictor.tokens(texts)
    split, extra = predictor.encode(token_lists)
    table = predictor.network.embedding.weight.detach().numpy()
    rows = np.concatenate([table, extra.numpy()]) if extra is not None else table
    expected = np.stack([rows[split.ids[a:b]].mean(axis=0) for a, b in zip(split.offsets[:-1], split.offsets[1:])])
    probs, features = predictor.predict_with_features(texts)
    np.testing.assert_allclose(features["vector"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs, predictor.predict_proba(texts), rtol=1e-6)
    assert features["tokens"].tolist() == [len(t) for t in token_lists]
    assert features["unseen"][-1] >= 3  # the made-up words
    logged = np.stack(frame.loc[ids, "vector"]).astype(np.float32)
    np.testing.assert_allclose(logged, expected[: len(ids)], rtol=1e-2, atol=1e-3)  # float16 in the log
    assert frame.loc[ids, "tokens"].tolist() == features["tokens"][: len(ids)].tolist()
    assert frame.loc[ids, "unseen"].tolist() == features["unseen"][: len(ids)].tolist()
